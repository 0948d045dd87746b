# Greedy slimming of the MobileNetV2 1.0x image-folder supernet, three FLOPs
# budgets in one pass (the full network has 300M FLOPs at 224x224). Each try
# is scored on the held-out images [supernet_images, end) of the training
# folder's permutation, which the supernet never trained on.
_base_ = ['./autoslim_mbv2_1.0x_supernet_1xb256_image-folder.py']

search_loop = dict(
    type='AutoSlimSearchLoop',
    targets=[220e6, 150e6, 100e6],
    constraint='flops',
    calibrate_bn_batches=10,
    dataloader=dict(
        batch_size=250,
        num_workers=4,
        dataset=dict(
            type='SubsetDataset',
            start=_base_.supernet_images,
            stop=None,
            permute_seed=_base_.split_seed,
            dataset=dict(
                _base_.train_dataloader.dataset.dataset,
                pipeline=_base_.test_pipeline)),
        sampler=dict(type='DefaultSampler', shuffle=False)))
