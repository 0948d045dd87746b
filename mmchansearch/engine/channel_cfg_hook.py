"""Stores a subnet model's channel_cfgs in the meta of its checkpoints, so
a retrained checkpoint says which network it holds
(``tools/export_subnet.py`` and ``tools/test.py`` read it back)."""
from __future__ import annotations

from mmengine.hooks import Hook

from ..distributed import unwrap
from ..registry import HOOKS

META_KEY = 'channel_cfgs'


@HOOKS.register_module()
class ChannelCfgMetaHook(Hook):
    """Adds ``meta['channel_cfgs']`` (one entry per subnet: its name and
    channel_cfg) and ``meta['input_shape']`` to every checkpoint of a model
    with ``channel_cfgs`` (:class:`~mmchansearch.models.SlimmableNetwork`);
    other models' checkpoints are left as they are."""
    priority = 'LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = unwrap(runner.model)
        channel_cfgs = getattr(model, 'channel_cfgs', None)
        if not channel_cfgs:
            return
        meta = checkpoint.setdefault('meta', {})
        meta[META_KEY] = [dict(name=name, channel_cfg=cfg.to_dict())
                          for name, cfg in zip(model.subnet_names,
                                               channel_cfgs)]
        meta['input_shape'] = list(model.input_shape)
