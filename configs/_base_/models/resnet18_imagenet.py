# ResNet-18 for ImageNet (mmpretrain's resnet18): 1.814G FLOPs (conv +
# linear multiply-accumulates at 224x224), 11.69M params.
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(3, ),
                  style='pytorch'),
    head=dict(in_channels=512))
