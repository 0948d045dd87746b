# AutoSlim's greedy slimming (AutoSlimSearchLoop, tools/search.py): from
# the widest subnet of a trained supernet, every step narrows the group
# whose narrowing costs the least accuracy on held-out images, until the
# subnet meets each FLOPs target in turn; BN is recalibrated on 10
# training batches before each result is evaluated and written. The
# held-out images are read in batches of 500, in order. A config adds the
# targets and the loader's dataset and workers, e.g. the last 10000
# Fashion-MNIST training images (the supernet trains on [0, 50000)):
#   dataset=dict(type='SubsetDataset', start=50000, stop=60000,
#                dataset=dict(_base_.train_dataloader.dataset.dataset,
#                             pipeline=_base_.test_pipeline))
search_loop = dict(
    type='AutoSlimSearchLoop',
    constraint='flops',
    calibrate_bn_batches=10,
    dataloader=dict(
        batch_size=500,
        sampler=dict(type='DefaultSampler', shuffle=False)))
