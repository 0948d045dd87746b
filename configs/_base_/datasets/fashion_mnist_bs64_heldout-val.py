# Fashion-MNIST for searches that rank what they find on held-out images:
# fashion_mnist_bs64_heldout.py (training on [0, 50000)), validating on
# the held-out training images [50000, 52000) with the test pipeline. The
# test files stay in test_dataloader, for the final numbers. A config may
# validate on more of them (val_dataloader.dataset.stop, up to 60000) and
# train on fewer images (train_dataloader.dataset.stop).
_base_ = ['./fashion_mnist_bs64_heldout.py']

val_dataloader = dict(
    dataset=dict(_delete_=True, type='SubsetDataset', start=50000, stop=52000,
                 dataset=dict(_base_.train_dataloader.dataset.dataset,
                              pipeline=_base_.test_pipeline)))
