# Network Adjustment of MobileNetV2 1.0x (6.12M FLOPs at 32x32) on
# Fashion-MNIST: the ResNet config's rounds, dropout and data with the
# MobileNetV2 of configs/_base_/models/mobilenet_v2_fashion_mnist.py (the
# ResNet's backbone replaced, its head given 1280 inputs). Set
# `search_loop.budget` to adjust at a smaller FLOPs budget (the original
# widths are first rescaled to it), e.g. 3M as in configs/compare/:
#   python tools/search.py configs/network_adjustment/\
#     na_mbv2_1.0x_search_1xb64_fashion-mnist.py --work-dir work_dirs/na_mbv2 \
#     --cfg-options search_loop.budget=3e6
# Retrain the result with the AutoSlim subnet config (any channel_cfg of
# MobileNetV2 1.0x), passing this config's mutator (width_cap, divisor):
#   python tools/train.py \
#     configs/autoslim/autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py \
#     --cfg-options model.channel_cfgs=work_dirs/na_mbv2/final.yaml \
#     model.mutator.width_cap=2.0 model.mutator.divisor=8
_base_ = ['./na_resnet18-cifar-0.25x_search_1xb64_fashion-mnist.py']

model = dict(
    architecture=dict(
        backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=1.0),
        head=dict(in_channels=1280)),
    # widths multiples of 8, as in tools/compare.py's retraining (the
    # ResNet config's whole channels are for the paper's 0.1 c_init step)
    mutator=dict(divisor=8))

# The toolbox's first protocol (fine-tuning rounds without training
# dropout, adjusting rate 0.2, FUR dropout 0.1 at the readers), with which
# tools/compare.py's MobileNetV2 result (benchmarks/RESULTS.md section 16)
# was measured; the ResNet
# config's protocol='paper' applies with search_loop.protocol=paper
# search_loop.step=0.1 search_loop.dropout.rate=0.05
# search_loop.train_dropout.rate=0.05.
search_loop = dict(protocol='finetune', step=0.2,
                   dropout=dict(rate=0.1), train_dropout=dict(rate=0.0))
