# FBNet DNAS on ImageNet-1k with FBNet's search space (22 layers x 9
# blocks) and a latency table of the target device. On that device:
#   python tools/build_latency_lut.py \
#     configs/dnas/dnas_fbnet_search_8xb32_in1k.py --device cuda \
#     --batch-size 1 -o work_dirs/lut/fbnet_in1k_cuda.json
# (--device cpu for a CPU target, and then latency_device='cpu'), then on
# 8 GPUs (--resume after a kill):
#   python -m torch.distributed.run --nproc_per_node=8 tools/search.py \
#       configs/dnas/dnas_fbnet_search_8xb32_in1k.py \
#       --launcher pytorch --work-dir work_dirs/dnas_in1k
# (tools/train.py and tools/dist_train.sh skip the search_loop and write
# no derived.yaml). After the search, 6 candidates of P_theta train
# briefly and the best is written as best.yaml (below). Following FBNet:
# weights on 80% of the training images and theta on the other 20% (a
# fixed random split), Gumbel temperature 5.0 decayed by 0.956 every
# epoch, loss CE * 0.2 * log(LAT ms)^0.6, theta with Adam (lr 0.01, weight
# decay 5e-4), 90 epochs: the schedule is
# _base_/schedules/differentiable_search.py unchanged.
_base_ = [
    '../_base_/models/fbnet_imagenet.py',
    '../_base_/datasets/imagenet_bs32_80-20.py',  # weights / architecture
    '../_base_/algorithms/dnas.py',  # + schedule, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             input_shape=(3, 224, 224),
             latency_table='work_dirs/lut/fbnet_in1k_cuda.json',
             latency_device='cuda',
             loss_form='multiplicative',
             alpha=0.2,
             beta=0.6)

train_cfg = dict(
    warmup_epochs=10,
    val_interval=10,
    arch_dataloader=dict(batch_size=32, num_workers=5,
                         dataset=_base_.arch_set))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2))

# FBNet's last step: 6 architectures of P_theta (the argmax and 5 draws),
# one per GPU, each trained 10 epochs with the retrain recipe (its lr
# scaled to one GPU's batch of 32) on the weights' 80%, scored on 50000
# images of the architecture's 20% (the ImageNet val set stays the test
# set); the best is written as best.yaml
search_loop = dict(
    type='DNASSearchLoop',
    num_samples=6,
    num_candidates=6,
    retrain_config='configs/dnas/dnas_fbnet_retrain_8xb32_in1k.py',
    candidate_epochs=10,
    dataloader=dict(
        batch_size=64,
        num_workers=5,
        persistent_workers=False,
        dataset=dict(_base_.arch_set,
                     stop=_base_.weights_images + 50000,
                     dataset=dict(_base_.train_set,
                                  pipeline=_base_.test_pipeline)),
        sampler=dict(type='DefaultSampler', shuffle=False)))
