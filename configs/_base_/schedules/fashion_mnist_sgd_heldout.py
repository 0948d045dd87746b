# fashion_mnist_sgd.py on the training images [0, 50000)
# (datasets/fashion_mnist_bs64_heldout.py): the last 10000 stay held out
# for a search. List it instead of the dataset and schedule configs.
_base_ = [
    '../datasets/fashion_mnist_bs64_heldout.py',
    './fashion_mnist_sgd.py',
]
