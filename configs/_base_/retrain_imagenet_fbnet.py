# Retraining a differentiable search's result (DNAS, DMaskingNAS in
# FBNetV2's space) from scratch on ImageNet-1k at 224x224 with FBNet's
# recipe (schedules/imagenet_bs256_fbnet_retrain.py), as the
# SlimmableNetwork of algorithms/slimmable.py (the result given as
# model.channel_cfgs); the last two checkpoints are kept, none is chosen by
# its validation (test) accuracy. A config adds its classifier and wraps
# it:
#   _base_ = ['../_base_/models/MODEL.py',
#             '../_base_/retrain_imagenet_fbnet.py']
#   model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
_base_ = [
    './datasets/imagenet_bs32.py',
    './algorithms/slimmable.py',
    './schedules/imagenet_bs256_fbnet_retrain.py',
]

algorithm = dict(mutator=dict(input_shape=(3, 224, 224)))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2))
