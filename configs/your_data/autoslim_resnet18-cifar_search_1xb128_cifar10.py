# Greedy slimming of the ResNet-18 CIFAR-10 supernet, three FLOPs budgets in
# one pass (the full network has 555M FLOPs at 32x32). Each try is scored
# on the 5000 held-out training images [45000, 50000), which the supernet
# never trained on; the test files stay for the final numbers.
_base_ = ['./autoslim_resnet18-cifar_supernet_1xb128_cifar10.py']

search_loop = dict(
    type='AutoSlimSearchLoop',
    targets=[400e6, 280e6, 140e6],
    constraint='flops',
    calibrate_bn_batches=10,
    dataloader=dict(
        batch_size=500,
        num_workers=2,
        dataset=dict(
            type='SubsetDataset',
            start=_base_.supernet_images,
            stop=None,
            dataset=dict(
                _base_.train_dataloader.dataset.dataset,
                pipeline=_base_.test_pipeline)),
        sampler=dict(type='DefaultSampler', shuffle=False)))
