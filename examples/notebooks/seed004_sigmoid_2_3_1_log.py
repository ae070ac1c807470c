"""Seed notebook 004 (sigmoid 2-3-1 net, loss log(output)): its NumPy cells, as written.

Compiled in script mode: the module-level code is the network, `l` the loss,
differentiated with respect to the input, the params and the hidden values:

    bpc compile examples/notebooks/seed004_sigmoid_2_3_1_log.py --loss l \
        --wrt X0,W1,beta1,W2,beta2,X_1,X_2
"""
import numpy as np 
def sigmoid(x):
    return 1/(1+np.exp(-x))
def sigmoid_der(x):
    return sigmoid(x)*(1-sigmoid(x))

def relu(x):
    # Fill code here for relu(x) = max(0,x)
    pass
def relu_der(x):
    # Fill code here for derivative of relu
    pass

def linear(W,x,beta):
    return np.matmul(W,x).reshape(-1,1)+beta

def dfXdX_func(W,x,beta,act_der):
    # Derivative of f(X_{k-1}) with respect to X_{k-1}
    return np.matmul(np.diag(act_der(linear(W,x,beta)).ravel()), 
                     W).reshape(W.shape)

def dfXdbeta_func(W,x,beta,act_der):
    # Derivative of f(X_{k-1}) with respect to beta_k
    dfXdbeta = np.diag(act_der(np.matmul(W,x)+beta).ravel())
    return dfXdbeta

def dfXdWi_func(W,x,beta,act_der,i):
    # Derivative of f(X_{k-1}) with respect to row i of W_k
    D = np.diag(act_der(np.matmul(W,x)+beta).ravel())
    Xi = np.zeros(W.shape)
    Xi[i,:] = x.T
    return np.matmul(D,Xi)


c = [2,3,1]
X0 = np.array([0.5,-0.5]).reshape(c[0],1)
W1 = np.array([[0.5,-2.5],[1.2,0.1],[-0.7,-1.2]]).reshape(c[1],c[0])
beta1 = np.array([-1.5,-1.3,2.0]).reshape(c[1],1)
W2 = np.array([-1.5, 0.2, 0.5]).reshape(c[2],c[1])
beta2 = np.array([1.0]).reshape([c[2],1])
W = {1:W1,2:W2}
beta = {1:beta1, 2:beta2}
X = {0:X0}

activation = sigmoid
activation_der = sigmoid_der
K = 2

# compute X
for i in range(1,K+1):
    X[i] = activation(linear(W[i],X[i-1],beta[i]))

# The loss of the notebook's PyTorch cell (l = torch.log(X2)), in NumPy:
l = np.log(X[2])
