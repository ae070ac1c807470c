import numpy as np

def sigmoid_np(a):
    return 1/(1+np.exp(-a))

def sigmoid_np_prime(a):
    return sigmoid_np(a)*(1-sigmoid_np(a))

def relu_np(z):
    return np.maximum(0 ,z)

def relu_np_prime(z):
    # anything in z <= 0 maps to 0. Anything > 0 maps to 1
    return np.where(z <= 0, 0, 1)

def weightedsum_np(A, W, b):
    return np.matmul(W, A) + b

params = {
    'x': np.array([[3.0], [-2.0]]),
    'W1': np.array([[1.0, 2.0]]),
    'b1':np.array([2.0]),
}

def f(params):
    v = {}
    v['layer1z'] = weightedsum_np(params['x'], params['W1'], params['b1'])
    v['layer1a'] = sigmoid_np(v['layer1z'])
    return v['layer1a'], v                      
