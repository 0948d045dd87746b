# Greedy slimming of the Fashion-MNIST AutoSlim supernet, three FLOPs
# targets in one pass. Subnets are scored on the 10000 held-out training
# images the supernet never trained on; BN is recalibrated on 10 training
# batches before each result is evaluated.
_base_ = [
    './autoslim_mbv2_1.0x_supernet_1xb64_fashion-mnist.py',
    '../_base_/search_loops/autoslim.py',
]

search_loop = dict(
    targets=[4.5e6, 3e6, 2e6],  # FLOPs; the full supernet has 6.12M
    num_batches=None,
    dataloader=dict(
        num_workers=2,
        # held-out images (the supernet trains on [0, 50000))
        dataset=dict(type='SubsetDataset', start=50000, stop=60000,
                     dataset=dict(_base_.train_dataloader.dataset.dataset,
                                  pipeline=_base_.test_pipeline))))
