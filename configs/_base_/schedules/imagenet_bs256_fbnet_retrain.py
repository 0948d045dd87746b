# Retraining a searched network from scratch on ImageNet-1k with the
# MobileNetV2 recipe that FBNet retrains with: SGD lr 0.045 at batch 256
# (scaled to the total batch by auto_scale_lr), decayed x0.98 every epoch,
# weight decay 4e-5 (none on norms and biases), 300 epochs, validation
# every epoch (used by ../retrain_imagenet_fbnet.py, which adds the data
# and the algorithm).
max_epochs = 300
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.045, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = dict(type='StepLR', by_epoch=True, step_size=1,
                       gamma=0.98)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=256)
