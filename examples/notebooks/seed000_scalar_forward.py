"""Seed notebook 000, section "1. Simple Scalar Network": its cells, as written.

    bpc compile examples/notebooks/seed000_scalar_forward.py --fn ScalarForward

The weights come from np.random.random without a seed: bpc keeps their shapes,
not their values (init_params draws its own), and reads x/X/Y as inputs.
"""
import autograd.numpy as np
from autograd import jacobian,elementwise_grad,grad

x = np.array([5])
y = np.array([3])
z = np.array([2])

def ScalarForward(wx,wy,wz):
    p = wx*x + wy*y
    q = wz*z
    f = p * q
    return f

# pick weights randomly
wx = np.random.random((1,1))
wy = np.random.random((1,1))
wz = np.random.random((1,1))

# compute gradients of f w.r.t wx,wy,wz
df_dwx = (wz*z)*x
df_dwy = (wz*z)*y
df_dwz = (wx*x + wy*y)*z

print("Computed Gradients:",df_dwx,df_dwy,df_dwz)

# autograd's `grad` returns a gradient function, that you can use later, with ScalarForward's arguments.
# ScalarForward takes in wx,wy,wz at positions 0,1,2 in the argument list.
# So, grad(ScalarForward,0) returns gradient of ScalarForward w.r.t wx.

gradient_fn_wx = grad(ScalarForward,0) # function to compute gradient w.r.t wx
gradient_fn_wy = grad(ScalarForward,1) # function to compute gradient w.r.t wy
gradient_fn_wz = grad(ScalarForward,2) # function to compute gradient w.r.t wz

#call gradient functions with the weights we picked randomly before.

auto_df_dwx = gradient_fn_wx(wx,wy,wz)
auto_df_dwy = gradient_fn_wy(wx,wy,wz)
auto_df_dwz = gradient_fn_wz(wx,wy,wz)

print("Autograd Gradients:",auto_df_dwx,auto_df_dwy,auto_df_dwz)
