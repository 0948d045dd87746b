# FBNet DNAS on Fashion-MNIST, small enough for a CPU. First measure the
# latency table of this space on the device the network will run on:
#   python tools/build_latency_lut.py \
#     configs/dnas/dnas_fbnet-small_search_1xb64_fashion-mnist.py \
#     --device cpu -o work_dirs/lut/fbnet-small_fashion-mnist_cpu.json
# then search (--resume after a kill):
#   python tools/search.py \
#     configs/dnas/dnas_fbnet-small_search_1xb64_fashion-mnist.py \
#     --work-dir work_dirs/dnas_fmnist
# Weights train on training images [0, 10000), the architecture on
# [10000, 12500) (FBNet's 80/20 split of the data used); the first epoch
# trains weights only. The loss is CE + cost_weight * |LAT / target - 1|:
# FBNet's CE * 0.2 * log(LAT)^0.6 needs latencies well above 1 ms, and this
# space runs in about 1-3 ms on a CPU core. `target` is in ms of the
# device the table was measured on: set it for yours. Then 4 candidates
# of P_theta train briefly and the best is written as best.yaml (FBNet's
# last step; search_loop.num_candidates=0 skips it). best.yaml (or
# derived.yaml) retrains with
#   python tools/train.py \
#     configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py \
#     --cfg-options model.backbone.blocks=work_dirs/dnas_fmnist/best.yaml
_base_ = [
    '../_base_/models/fbnet-small_fashion_mnist.py',
    # training on [0, 50000), validation on held-out [50000, 52000)
    '../_base_/datasets/fashion_mnist_bs64_heldout-val.py',
    '../_base_/algorithms/dnas.py',  # + schedule, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             latency_table='work_dirs/lut/fbnet-small_fashion-mnist_cpu.json',
             latency_device='cpu',
             loss_form='additive',
             cost_weight=1.0,
             target=1.2)  # ms

train_dataloader = dict(dataset=dict(stop=10000))
# the derived network is validated on all 10000 held-out training images
val_dataloader = dict(dataset=dict(stop=60000))

max_epochs = 6
train_cfg = dict(
    max_epochs=max_epochs,
    warmup_epochs=1,
    val_interval=max_epochs,
    arch_dataloader=dict(
        batch_size=64,
        num_workers=2,
        dataset=dict(_base_.train_dataloader.dataset, start=10000,
                     stop=12500)))
val_cfg = dict(calibrate_bn_batches=10)
test_cfg = dict(calibrate_bn_batches=10)

optim_wrapper = dict(architecture=dict(optimizer=dict(lr=0.05)))
param_scheduler = dict(architecture=dict(end=max_epochs))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=64)

# FBNet's last step: the argmax and 3 other architectures of P_theta train
# 3 epochs each (the retrain recipe, its cosine compressed to 3 epochs) on
# the weights' split; the best on the held-out images (val_dataloader) is
# written as best.yaml
search_loop = dict(
    type='DNASSearchLoop',
    num_samples=5,
    num_candidates=4,
    retrain_config='configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py',
    candidate_epochs=3)
