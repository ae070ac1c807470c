"""Seed notebook 000, section "2. Network with vector input, no hidden layers": its cells, as written.

    bpc compile examples/notebooks/seed000_vector_forward.py --fn VectorForward

The weights come from np.random.random without a seed: bpc keeps their shapes,
not their values (init_params draws its own), and reads x/X/Y as inputs.
"""
import autograd.numpy as np
from autograd import jacobian,elementwise_grad,grad

X = np.array([  [0,0,1] ]) # Input vector
Y = np.array([ [0] ]) # Target output
W0 = np.random.random((3,1)) # random weight W0

def sigmoid(x):
    return 1/(1+np.exp(-x))

def sigmoid_derivative(x):
    return sigmoid(x)*(1-sigmoid(x))

Linear = np.dot(X,W0) # Linear Operation
NonLinear = sigmoid(Linear) # Apply Non-linear activation
Error = Y - NonLinear # Compute Error w.r.t target Y

def VectorForward(W0):
    Linear = np.dot(X,W0)
    NonLinear = sigmoid(Linear)
    Error = Y - NonLinear
    return Error 

gradient_fn_W0 = grad(VectorForward)

autograd_dError_W0 = gradient_fn_W0(W0)
print("Autograd Gradients:")
print("Gradient w.r.t W0:", autograd_dError_W0)
