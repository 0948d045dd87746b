# The quick-start demo's greedy search: three FLOPs targets (the 0.5x
# supernet has 1.97M), subnets scored on 500 held-out training images.
_base_ = ['./autoslim_mbv2_0.5x_supernet_1xb64_fashion-mnist-demo.py']

search_loop = dict(
    type='GreedySlimmingLoop',
    targets=[1.4e6, 1.0e6, 0.7e6],
    constraint='flops',
    calibrate_bn_batches=5,
    dataloader=dict(
        batch_size=500,
        num_workers=0,
        dataset=dict(
            type='SubsetDataset',
            start=50000,
            stop=50500,
            dataset=dict(
                _base_.train_dataloader.dataset.dataset,
                pipeline=_base_.test_pipeline)),
        sampler=dict(type='DefaultSampler', shuffle=False)))
