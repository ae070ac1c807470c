"""Seed notebook 001 (5-layer ReLU net, column layout): its forward cells, as written.

    bpc compile examples/notebooks/seed001_relu_deep_column.py \
        --fn compute_network_output --loss least_squares_loss

The weights and biases are the notebook's own np.random.seed(0) draws, reproduced
at compile time; the loss is 327.371 as the notebook prints.
"""
import numpy as np
import matplotlib.pyplot as plt

np.random.seed(0)

# number of hidden layers
K = 5

# number of neurons per layer
D = 6

# input layer
D_i = 1

# output layer
D_o = 1

all_weights = [None] * (K + 1)
all_biases = [None] * (K + 1)

all_weights

# weights for input layer
all_weights[0] = np.random.normal(size=(D, D_i))

# weights for output layer
all_weights[-1] = np.random.normal(size=(D_o, D))

all_biases[0] = np.random.normal(size=(D, 1))
all_biases[-1] = np.random.normal(size=(D_o, 1)) 

for layer in range(1, K):
  all_weights[layer] = np.random.normal(size=(D, D))
  all_biases[layer] = np.random.normal(size=(D, 1))

def ReLU(preactivation):
  activation = preactivation.clip(0.0)
  return activation

def compute_network_output(net_input, all_weights, all_biases):
  
  K = len(all_weights) - 1
  
  all_f = [None] * (K + 1)
  all_h = [None] * (K + 1)
  
  all_h[0] = net_input
  
  for layer in range(K):
    all_f[layer] = all_biases[layer] + np.matmul(all_weights[layer], all_h[layer]) # (6, 1) + (6, 6) * (6, 1) = (6, 1)
    all_h[layer + 1] = ReLU(all_f[layer])
  
  all_f[K] = all_biases[K] + np.matmul(all_weights[K], all_h[K])
  
  net_output = all_f[K]

  return net_output, all_f, all_h

# Define input
net_input = np.ones((D_i,1)) * 1.2
# Compute network output
net_output, all_f, all_h = compute_network_output(net_input,all_weights, all_biases)
print("True output = %3.3f, Your answer = %3.3f"%(1.907, net_output[0,0]))

def least_squares_loss(net_output, y):
  return np.sum((net_output - y)**2)

def d_loss_d_output(net_output, y):
  return 2*(net_output - y)

y = np.ones((D_o,1)) * 20.0
loss = least_squares_loss(net_output, y)
print("y = %3.3f Loss = %3.3f"%(y, loss))
