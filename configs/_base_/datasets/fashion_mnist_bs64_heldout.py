# Fashion-MNIST (fashion_mnist_bs64.py) for searches: training uses the
# first 50000 training images; [50000, 60000) stay held out, for a search
# to score subnets or candidates on (955 to 1050 images of every class;
# the training files are in random class order). The test files stay for
# the final numbers. A config takes its held-out range, with the test
# pipeline, from the unsplit training set:
#   dataset=dict(type='SubsetDataset', start=50000, stop=52000,
#                dataset=dict(_base_.train_dataloader.dataset.dataset,
#                             pipeline=_base_.test_pipeline))
# and may train on fewer images: train_dataloader.dataset.stop. A search
# that validates on held-out images inherits
# fashion_mnist_bs64_heldout-val.py.
_base_ = ['./fashion_mnist_bs64.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SubsetDataset',
        start=0,
        stop=50000,
        dataset=_base_.train_dataloader.dataset))
