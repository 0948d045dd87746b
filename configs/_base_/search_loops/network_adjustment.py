# Network Adjustment (NetworkAdjustmentSearchLoop, tools/search.py) with the
# paper's protocol, as its authors' code: every round trains the current
# network from scratch (train_cfg.max_epochs epochs) with channel dropout
# as a regulariser, measures every group's FLOPs utilization ratio (FUR)
# on held-out images (channels dropped at the layers' outputs, rate 0.05,
# scaled by the group's FLOPs; the loss is what the dropout damages),
# moves the 2 groups of highest FUR up and the 2 of lowest down by 0.1 of
# their starting width and rescales every group to the starting FLOPs.
# "searched 0.8x" (final_x0.8.yaml) is the same adjustment of the uniform
# 0.8x network (work dir x0.8/). search_loop.protocol=finetune gives the
# toolbox's first protocol (fine-tuning rounds). A config adds the rounds,
# the dropout's repeats and the loader's dataset, batch size and workers.
search_loop = dict(
    type='NetworkAdjustmentSearchLoop',
    protocol='paper',
    num_changed=2,
    step=0.1,
    dropout=dict(kind='bernoulli', rate=0.05, scale_by_flops=True),
    # the protocol's training dropout: train_dropout=dict(rate=0.05)
    metric='loss',
    scales=[0.8],
    dataloader=dict(sampler=dict(type='DefaultSampler', shuffle=False)))
