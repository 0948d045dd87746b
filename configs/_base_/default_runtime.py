# Runtime shared by every config: hooks, environment, logging, seeding.
# Mirrors mmpretrain's default_runtime.py, with the toolbox's scope.

# Types resolve in mmchansearch first, then mmpretrain, then mmengine.
default_scope = 'mmchansearch'

default_hooks = dict(
    # records the time of every iteration
    timer=dict(type='IterTimerHook'),
    # prints the log every 50 iterations
    logger=dict(type='LoggerHook', interval=50),
    # steps the learning-rate schedule
    param_scheduler=dict(type='ParamSchedulerHook'),
    # saves a checkpoint every epoch, keeps the last three
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    # reseeds the distributed sampler every epoch
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # draws validation predictions; set enable=True to use it
    visualization=dict(type='VisualizationHook', enable=False),
)

custom_hooks = [
    # a retrained subnet's checkpoint carries its channel_cfg in its meta
    dict(type='ChannelCfgMetaHook'),
    # checkpoints carry the random generators' states: --resume continues
    # with the random numbers an uninterrupted run would have drawn
    dict(type='RandomStateHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'nccl' on GPUs; torchrun launches on machines without CUDA use gloo
    # (mmchansearch.cli starts the process group)
    dist_cfg=dict(backend='nccl'),
)

log_processor = dict(window_size=10)

vis_backends = [dict(type='LocalVisBackend')]
# mmpretrain's visualizer, which its VisualizationHook needs
visualizer = dict(
    type='UniversalVisualizer', vis_backends=vis_backends,
    _scope_='mmpretrain')

# plain validation and test loops; an algorithm fragment
# (_base_/algorithms/) replaces them with its per-subnet loops
val_cfg = dict()
test_cfg = dict()

log_level = 'INFO'
load_from = None
resume = False

# A fixed seed: searches compare subnets, so runs must be repeatable.
randomness = dict(seed=0, deterministic=False)
