# The schedule of a differentiable (Gumbel-softmax) search (DMaskingNAS,
# DNAS): the network weights (model.architecture) and the architecture
# parameters (model.arch_params) have separate optimizers, and training
# alternates them: every weight step on the weights' split of the training
# images is followed by an architecture step on a batch of the
# architecture's split (DifferentiableTrainLoop), after warmup_epochs of
# weight steps only. The Gumbel temperature starts at tau and is multiplied
# by tau_decay every epoch.
#
# The defaults are FBNet's ImageNet recipe for a total batch of 256. A
# config adds train_cfg.warmup_epochs and val_interval, and the
# arch_dataloader's batch_size, num_workers and dataset (the architecture's
# split). One changing max_epochs also sets train_cfg.max_epochs and
# param_scheduler.architecture.end to it: they are resolved here.
max_epochs = 90

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    # the weights: SGD with Nesterov momentum, no weight decay on BN and
    # biases
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True,
                       weight_decay=1e-4),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0)),
    # the architecture: Adam, lr 0.01, weight decay 5e-4 (FBNet, FBNetV2)
    arch_params=dict(
        optimizer=dict(type='Adam', lr=0.01, betas=(0.9, 0.999),
                       weight_decay=5e-4)))

# the weights' lr: cosine to 0 over max_epochs, stepped every iteration;
# the architecture's lr stays constant
param_scheduler = dict(
    architecture=dict(
        type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
        eta_min=0.0, convert_to_iter_based=True),
    arch_params=[])

train_cfg = dict(
    type='DifferentiableTrainLoop',
    max_epochs=max_epochs,
    tau=5.0,
    tau_decay=0.956,  # FBNet's schedule: 5.0 -> 0.09 at epoch 89
    arch_dataloader=dict(
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True)))
# validation and test report the derived (argmax) network with its BN
# recalibrated: the loops are the algorithm's (_base_/algorithms/dmasking.py,
# dnas.py)

# `--auto-scale-lr` scales lr by (total batch size / 256)
auto_scale_lr = dict(base_batch_size=256)
