# The DMaskingNAS recipe of FBNetV2 on ImageNet-1k for 8 GPUs x 64 images
# (total batch 512): differentiable_search.py's 90 epochs (SGD + cosine on the
# weights, Adam lr 0.01 / weight decay 5e-4 on the architecture, Gumbel
# temperature 5.0 annealed x0.956 per epoch) with the weights' lr 0.2 and
# weight decay 4e-5; the first 8 epochs train the weights only;
# validation every 5 epochs. The weights train on 80% of the training set,
# the architecture on the other 20% (datasets/imagenet_bs32_80-20.py); the
# ImageNet validation set is untouched until the derived network is
# retrained. Writes derived.yaml after training (DMaskingNASSearchLoop). A
# config adds the model.
_base_ = ['../datasets/imagenet_bs32_80-20.py', './differentiable_search.py']

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

train_cfg = dict(
    warmup_epochs=8,
    val_interval=5,
    arch_dataloader=dict(batch_size=64, num_workers=5,
                         dataset=_base_.arch_set))

optim_wrapper = dict(
    architecture=dict(optimizer=dict(lr=0.2, weight_decay=4e-5)))
auto_scale_lr = dict(base_batch_size=512)

search_loop = dict(type='DMaskingNASSearchLoop')
