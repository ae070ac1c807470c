"""Seed notebook 000, section "4. Two Hidden Layers": its cells, as written.

    bpc compile examples/notebooks/seed000_two_hidden_forward.py --fn vector_two_hidden_forward

The weights come from np.random.random without a seed: bpc keeps their shapes,
not their values (init_params draws its own), and reads x/X/Y as inputs.
"""
import autograd.numpy as np
from autograd import jacobian,elementwise_grad,grad

def sigmoid(x):
    return 1/(1+np.exp(-x))

def sigmoid_derivative(x):
    return sigmoid(x)*(1-sigmoid(x))

# 2 Hidden Layers, so 3 Weights now to compute for
X = np.array([  [1,0,1] ])
Y = np.array([ [0] ])
W0 = np.random.random((3,4))
W1 = np.random.random((4,4))
W2 = np.random.random((4,1))

L1_Input = np.dot(X,W0)
L1 = sigmoid(L1_Input)

L2_Input = np.dot(L1,W1)
L2 = sigmoid(L2_Input)

Last_Input = np.dot(L2,W2)
Pred = sigmoid(Last_Input)

Error = Y - Pred

def vector_two_hidden_forward(W0,W1,W2):
    L1_Input = np.dot(X,W0)
    L1 = sigmoid(L1_Input)
    L2_Input = np.dot(L1,W1)
    L2 = sigmoid(L2_Input)
    Last_Input = np.dot(L2,W2)
    Pred = sigmoid(Last_Input)
    Error = Y - Pred
    
    return Error

autogradient_fn_W0 = grad(vector_two_hidden_forward,0)
autogradient_fn_W1 = grad(vector_two_hidden_forward,1)
autogradient_fn_W2 = grad(vector_two_hidden_forward,2)

autograd_dError_W0 = autogradient_fn_W0(W0,W1,W2)
autograd_dError_W1 = autogradient_fn_W1(W0,W1,W2)
autograd_dError_W2 = autogradient_fn_W2(W0,W1,W2)

print("Autograd Gradients:")
print("Gradient w.r.t W2:", autograd_dError_W2)
print("Gradient w.r.t W1:", autograd_dError_W1)
print("Gradient w.r.t W0:", autograd_dError_W0)
