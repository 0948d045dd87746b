# The DMaskingNAS recipe of FBNetV2 on ImageNet-1k for 8 GPUs x 64 images
# (total batch 512): differentiable_search.py's 90 epochs (SGD + cosine on the
# weights, Adam lr 0.01 / weight decay 5e-4 on the architecture, Gumbel
# temperature 5.0 annealed x0.956 per epoch) with the weights' lr 0.2 and
# weight decay 4e-5; the first 8 epochs train the weights only;
# validation every 5 epochs. The training set (imagenet_bs32.py) is split
# 80/20 (a fixed random permutation, so every class is in both): the
# weights train on 80%, the architecture on the other 20%; the ImageNet
# validation set is untouched until the derived network is retrained.
# Writes derived.yaml after training (DMaskingNASSearchLoop). A config adds
# the model.
_base_ = ['../datasets/imagenet_bs32.py', './differentiable_search.py']

train_set = _base_.train_dataloader.dataset
num_train = 1281167  # ImageNet-1k training images
split = num_train * 4 // 5
train_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='SubsetDataset', start=0, stop=split,
                 permute_seed=0, dataset=train_set))
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

train_cfg = dict(
    warmup_epochs=8,
    val_interval=5,
    arch_dataloader=dict(
        batch_size=64,
        num_workers=5,
        dataset=dict(
            type='SubsetDataset', start=split, stop=None, permute_seed=0,
            dataset=train_set)))

optim_wrapper = dict(
    architecture=dict(optimizer=dict(lr=0.2, weight_decay=4e-5)))
auto_scale_lr = dict(base_batch_size=512)

search_loop = dict(type='DMaskingNASSearchLoop')
