# The ReXNet schedule for a total batch of 512 (8 GPUs x 64), as in the
# paper and the official training command (timm's train.py): SGD with
# Nesterov momentum, lr 0.5 warmed up linearly over 5 epochs then
# cosine-decayed to 1e-5 over 400 epochs, every iteration; weight decay
# 1e-5, none on BN and biases (timm's default). Label smoothing 0.1 is
# set in the model head, not here. A config changing max_epochs or
# warmup_epochs also gives param_scheduler (a list: whole) and
# train_cfg.max_epochs again.
max_epochs = 400
warmup_epochs = 5

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.5, momentum=0.9, nesterov=True, weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)

# linear warmup, then cosine to 1e-5, stepped every iteration
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)

# `--auto-scale-lr` scales lr by (total batch size / 512)
auto_scale_lr = dict(base_batch_size=512)
