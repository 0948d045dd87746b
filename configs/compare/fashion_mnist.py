# The five channel-search methods on Fashion-MNIST at one budget, against
# the uniform-width MobileNetV2 of the same FLOPs:
#   python tools/compare.py configs/compare/fashion_mnist.py \
#     --work-dir work_dirs/compare          # run again to resume
# Budget: 3M FLOPs (conv + linear MACs at 32x32; MobileNetV2 1.0x has
# 6.12M). Base family: MobileNetV2's inverted residual blocks. AutoSlim,
# Network Adjustment and DMaskingNAS search the widths of MobileNetV2 1.0x,
# ReXNet the block widths of an 8-block ReXNet, FBNet DNAS the blocks of an
# FBNet space with MobileNetV2's macro-architecture (k3_e6 everywhere is
# MobileNetV2 with e6 in the first layer). DNAS searches under a latency
# budget: the baseline's measured latency on this CPU, from a table of the
# space measured here. Every result and the baseline are retrained from
# scratch with the `retrain` recipe and seeds and tested on the 10000 test
# images. The search schedules are the methods' Fashion-MNIST configs
# shortened for 2 CPU cores; results: benchmarks/RESULTS.md, section 16.
_base_ = ['../_base_/datasets/fashion_mnist_bs64.py']  # its train dataset

input_shape = (3, 32, 32)
flops_budget = 3e6
tolerance = 0.05  # a result more than 5% over its budget is reported
data_root = None  # None: the dataset configs' data/fashion_mnist

_train_images = 10000
_retrain_epochs = 3
retrain = dict(
    seeds=[0, 1, 2],
    # merged into every retraining config: same data, schedule, seeds
    overrides=dict(
        train_dataloader=dict(
            num_workers=0,
            persistent_workers=False,
            dataset=dict(
                _delete_=True,
                type='SubsetDataset',
                start=0,
                stop=_train_images,
                dataset=_base_.train_dataloader.dataset)),
        val_dataloader=dict(num_workers=0, persistent_workers=False),
        test_dataloader=dict(num_workers=0, persistent_workers=False),
        max_epochs=_retrain_epochs,
        train_cfg=dict(max_epochs=_retrain_epochs,
                       val_interval=_retrain_epochs),
        param_scheduler=dict(end=_retrain_epochs),
        default_hooks=dict(checkpoint=dict(max_keep_ckpts=1),
                           logger=dict(interval=50))))

# MobileNetV2 1.0x widths: the baseline, AutoSlim, NA and DMaskingNAS
_mbv2_retrain = \
    'configs/autoslim/autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py'
baseline = dict(type='uniform', name='uniform MobileNetV2',
                retrain=_mbv2_retrain)

# search data: weights on [0, 10000) or less, held-out training images from
# 50000 on (the test files stay for the final numbers)
_loader = dict(num_workers=0, persistent_workers=False)
_small_data = dict(**_loader, dataset=dict(stop=_train_images))
# an FBNet space shaped like MobileNetV2 (stem 32/s2, 17 layers, last 1280)
_fbnet_mbv2 = dict(
    stages=((1, 16, 1), (2, 24, 2), (3, 32, 2), (4, 64, 2), (3, 96, 1),
            (3, 160, 2), (1, 320, 1)),
    stem_channels=32,
    stem_stride=2,
    last_channels=1280)

# keyed so a config can change one method (methods.dnas.budget='flops')
methods = dict(
    autoslim=dict(
        type='autoslim',
        name='AutoSlim',
        supernet='configs/autoslim/'
        'autoslim_mbv2_1.0x_supernet_1xb64_fashion-mnist.py',
        search='configs/autoslim/'
        'autoslim_mbv2_1.0x_search_1xb64_fashion-mnist.py',
        retrain=_mbv2_retrain,
        # supernet: 3 epochs on 10000 images (sandwich of 4, distillation)
        supernet_overrides=dict(
            train_dataloader=_small_data,
            val_dataloader=_loader,
            max_epochs=3, train_cfg=dict(max_epochs=3, val_interval=3),
            param_scheduler=dict(end=3),
            default_hooks=dict(checkpoint=dict(save_best=None))),
        # greedy steps scored on 500 held-out images
        overrides=dict(search_loop=dict(dataloader=dict(
            num_workers=0, dataset=dict(stop=50500))))),
    network_adjustment=dict(
        type='network_adjustment',
        name='Network Adjustment',
        search='configs/network_adjustment/'
        'na_mbv2_1.0x_search_1xb64_fashion-mnist.py',
        retrain=_mbv2_retrain,
        # 3 rounds of 1 epoch on 10000 images; FURs on 1000 held-out
        # images, 2 dropout repetitions
        overrides=dict(
            train_dataloader=_small_data,
            val_dataloader=_loader,
            max_epochs=1, train_cfg=dict(max_epochs=1, val_interval=1),
            param_scheduler=dict(end=1),
            search_loop=dict(rounds=3, dropout=dict(repeats=2),
                             dataloader=dict(dataset=dict(stop=51000)))),
        # the result may be wider than MobileNetV2 1.0x in places
        retrain_overrides=dict(model=dict(mutator=dict(
            width_cap=2.0, divisor=8, min_width=8)))),
    rexnet=dict(
        type='rexnet',
        name='ReXNet',
        search='configs/rexnet/rexnet_search_1xb64_fashion-mnist.py',
        retrain='configs/rexnet/rexnet_retrain_1xb64_fashion-mnist.py',
        window=0.9,
        # 8 candidates, each trained once (2 epochs on 5000 images)
        overrides=dict(
            train_dataloader=_loader,
            val_dataloader=_loader,
            search_loop=dict(max_params=1e9, increase=(32, 192),
                             num_candidates=8, seeds=1))),
    dmasking=dict(
        type='dmasking',
        name='DMaskingNAS',
        search='configs/dmasking/'
        'dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py',
        retrain=_mbv2_retrain,
        # 6 epochs (2 warm-up): weights on 5000 images, alphas on 5000
        overrides=dict(
            train_dataloader=dict(**_loader, dataset=dict(stop=5000)),
            train_cfg=dict(max_epochs=6, arch_dataloader=dict(
                **_loader, dataset=dict(start=45000, stop=50000))),
            max_epochs=6,
            param_scheduler=dict(architecture=dict(end=6)),
            val_dataloader=_loader)),
    dnas=dict(
        type='dnas',
        name='FBNet DNAS',
        budget='latency',
        search='configs/dnas/dnas_fbnet-small_search_1xb64_fashion-mnist.py',
        retrain='configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py',
        # 3 epochs (1 warm-up): weights on 5000 images, theta on 2500; with
        # so few theta steps tau decays x0.5 per epoch and theta's lr is 0.05
        overrides=dict(
            model=dict(architecture=dict(backbone=_fbnet_mbv2,
                                         head=dict(in_channels=1280))),
            optim_wrapper=dict(arch_params=dict(optimizer=dict(lr=0.05))),
            train_dataloader=dict(**_loader, dataset=dict(stop=5000)),
            train_cfg=dict(max_epochs=3, val_interval=3, tau_decay=0.5,
                           arch_dataloader=dict(
                               **_loader,
                               dataset=dict(start=10000, stop=12500))),
            max_epochs=3,
            param_scheduler=dict(architecture=dict(end=3)),
            val_dataloader=dict(**_loader, dataset=dict(stop=51000)),
            # the derived (argmax) network is compared: FBNet's training
            # of candidates of P_theta is skipped
            search_loop=dict(num_candidates=0)),
        retrain_overrides=dict(model=dict(architecture=dict(
            backbone=_fbnet_mbv2, head=dict(in_channels=1280))))),
)
