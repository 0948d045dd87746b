# The DMaskingNAS schedule on Fashion-MNIST, one device at batch 64:
# differentiable_search.py shortened to 8 epochs on the held-out dataset
# config's [0, 50000) (fashion_mnist_bs64_heldout.py), split 40000 / 10000: the
# weights train on [0, 40000), the architecture on [40000, 50000); the
# first 2 epochs train the weights only, then every weight step is
# followed by an architecture step. The derived network is validated
# every epoch (on the test files; a config sets the BN recalibration of
# its loops, e.g. val_cfg = dict(calibrate_bn_batches=10)). Writes
# derived.yaml after training (DMaskingNASSearchLoop). A config adds the
# model; one changing max_epochs also sets train_cfg.max_epochs and
# param_scheduler.architecture.end, and one changing the split sets
# weights_split, train_dataloader.dataset and
# train_cfg.arch_dataloader.dataset again.
_base_ = ['../datasets/fashion_mnist_bs64_heldout.py',
          './differentiable_search.py']

# the dataset config's [0, 50000) split 40000 / 10000
weights_split = dict(_base_.train_dataloader.dataset, stop=40000)
train_dataloader = dict(dataset=weights_split)

max_epochs = 8
train_cfg = dict(
    max_epochs=max_epochs,
    warmup_epochs=2,
    # FBNet anneals x0.956 per epoch over 90 epochs; this short schedule
    # anneals faster (5.0 -> 0.41 at epoch 7)
    tau_decay=0.7,
    val_interval=1,
    arch_dataloader=dict(
        batch_size=64,
        num_workers=2,
        dataset=dict(weights_split, start=40000, stop=50000)))

optim_wrapper = dict(
    architecture=dict(optimizer=dict(lr=0.05, weight_decay=4e-5)),
    # FBNetV2: Adam, lr 0.01, weight decay 5e-4 on the architecture; lr
    # 0.05 here: this schedule has ~20x fewer architecture steps than one
    # of ImageNet, and at 0.01 the distributions stay flat
    arch_params=dict(optimizer=dict(lr=0.05)))
param_scheduler = dict(architecture=dict(end=max_epochs))
auto_scale_lr = dict(base_batch_size=64)

search_loop = dict(type='DMaskingNASSearchLoop')
