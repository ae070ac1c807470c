"""Seed notebook 002 (2-10-10-1 sigmoid MLP, squared-error loss, SGD at batch 1).

The notebook builds its network with torch.nn.Sequential; this is the same
forward pass written as the NumPy a student writes, on the notebook's data
(100 points in [0, 1]^2, labels (x1^2 + x2^2) / 2), drawn here with NumPy:

    bpc compile examples/notebooks/seed002_mlp_2_10_10_1.py --fn loss_at_first_point
"""
import numpy as np

np.random.seed(0)
x = np.random.uniform(0, 1, size=(100, 2))
y = (x[:, 0] * x[:, 0] + x[:, 1] * x[:, 1]) / 2

# torch.nn.Linear(n_in, n_out) keeps its weight as (n_out, n_in) and computes x @ W.T + b
W1 = np.random.uniform(-1 / np.sqrt(2), 1 / np.sqrt(2), size=(10, 2))
b1 = np.random.uniform(-1 / np.sqrt(2), 1 / np.sqrt(2), size=(10,))
W2 = np.random.uniform(-1 / np.sqrt(10), 1 / np.sqrt(10), size=(10, 10))
b2 = np.random.uniform(-1 / np.sqrt(10), 1 / np.sqrt(10), size=(10,))
W3 = np.random.uniform(-1 / np.sqrt(10), 1 / np.sqrt(10), size=(1, 10))
b3 = np.random.uniform(-1 / np.sqrt(10), 1 / np.sqrt(10), size=(1,))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def linear(x, W, b):
    return x @ W.T + b


def net1(x, W1, b1, W2, b2, W3, b3):
    h1 = sigmoid(linear(x, W1, b1))
    h2 = sigmoid(linear(h1, W2, b2))
    return linear(h2, W3, b3)


def L(predict, y):
    return np.sum((predict - y) ** 2)


def loss_at_first_point(W1, b1, W2, b2, W3, b3):
    prediction = net1(x[0], W1, b1, W2, b2, W3, b3)
    return L(prediction, y[0])
