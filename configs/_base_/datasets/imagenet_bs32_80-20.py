# imagenet_bs32.py with its training set split 80/20 by a fixed random
# permutation of the (class-sorted) train list, so every class is in both:
# a differentiable search trains its weights on the 80% (train_dataloader)
# and its architecture on the 20% (`arch_set`, for
# train_cfg.arch_dataloader); the ImageNet validation set stays untouched
# until the derived network is retrained.
_base_ = ['./imagenet_bs32.py']

split_seed = 0
num_train_images = 1281167  # ImageNet-1k training images
weights_images = int(num_train_images * 0.8)
train_set = _base_.train_dataloader.dataset
train_dataloader = dict(dataset=dict(
    _delete_=True, type='SubsetDataset', start=0, stop=weights_images,
    permute_seed=split_seed, dataset=train_set))
arch_set = dict(type='SubsetDataset', start=weights_images, stop=None,
                permute_seed=split_seed, dataset=train_set)
