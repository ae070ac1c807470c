"""Seed notebook 000, section "3. Vector Input, One Hidden Layer": its cells, as written.

    bpc compile examples/notebooks/seed000_one_hidden_forward.py --fn vector_one_hidden_forward

The weights come from np.random.random without a seed: bpc keeps their shapes,
not their values (init_params draws its own), and reads x/X/Y as inputs.
"""
import autograd.numpy as np
from autograd import jacobian,elementwise_grad,grad

def sigmoid(x):
    return 1/(1+np.exp(-x))

def sigmoid_derivative(x):
    return sigmoid(x)*(1-sigmoid(x))

# Input X, Target Y , and 2 Weights because we have 1 hidden layer.
X = np.array([  [0,0,1] ])
Y = np.array([ [0] ])
W0 = np.random.random((3,4))
W1 = np.random.random((4,1))

L1_Input = np.dot(X,W0) # Unactivated input to the hidden layer
L1 = sigmoid(L1_Input) # Hidden Layer activated output

Last_Input = np.dot(L1,W1)
Pred = sigmoid(Last_Input)

Error = Y - Pred

def vector_one_hidden_forward(W0,W1):
    L1_Input = np.dot(X,W0)
    L1 = sigmoid(L1_Input)

    Last_Input = np.dot(L1,W1)
    Pred = sigmoid(Last_Input)

    Error = Y - Pred

    return Error

autogradient_fn_W0 = grad(vector_one_hidden_forward,0)
autogradient_fn_W1 = grad(vector_one_hidden_forward,1)

autograd_dError_W0 = autogradient_fn_W0(W0,W1)
autograd_dError_W1 = autogradient_fn_W1(W0,W1)

print("Autograd Gradients:")
print("Gradient w.r.t W1:", autograd_dError_W1)
print("Gradient w.r.t W0:", autograd_dError_W0)
