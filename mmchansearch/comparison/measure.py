"""FLOPs, params and latency of the compared networks, measured one way
for every search space."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from ..analysis import LogitsModule, forward_logits
from ..estimators import traced_macs
from ..latency_table import (
    LatencyTable,
    build_table,
    calibrate,
    measure_latencies,
    network_ops,
)
from ..registry import MODELS


@dataclass
class NetworkCosts:
    """What one compared network costs (FLOPs = conv + linear MACs)."""
    flops: float
    params: float
    lut_ms: float
    measured_ms: float

    def asdict(self) -> dict:
        return asdict(self)


def static_network(config: str) -> nn.Module:
    """The classifier a retraining config trains, with its final widths
    (a single-subnet ``SlimmableNetwork`` holds the static subnet)."""
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(cfg.model)
    return getattr(model, 'architecture', model).eval()


def conv_linear_macs(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Conv + linear multiply-accumulates of one sample's forward."""
    with torch.no_grad():
        return float(sum(traced_macs(model, lambda: forward_logits(
            model, torch.zeros(1, *input_shape))).values()))


def measure_networks(networks: Mapping[str, nn.Module],
                     input_shape: Sequence[int], table_path: str,
                     calibrate_on: str, repeats: int = 20, rounds: int = 10
                     ) -> dict[str, NetworkCosts]:
    """Costs of each network on this machine's CPU (batch 1).

    One latency table holds every conv/linear op of the networks
    (``table_path``; reused as it is when it has them all, else extended
    and recalibrated); its calibration scale is fitted on the network
    ``calibrate_on`` (the baseline) alone, so the other networks' LUT
    latencies are predictions. Measured latencies are
    medians over ``rounds`` rounds of ``repeats`` runs, the networks
    alternating (:func:`measure_latencies`).
    """
    ops = {name: network_ops(net, input_shape)
           for name, net in networks.items()}
    all_ops = [op for v in ops.values() for op in v]
    table = LatencyTable.load(table_path, 'cpu') \
        if os.path.isfile(table_path) else None
    if table is None or any(op.signature not in table.entries
                            for op in all_ops):
        table = build_table(all_ops, 'cpu', repeats=repeats, table=table)
        table.source = table_path
        calibrate(table, [(networks[calibrate_on], lambda t: t.latency(
            op.signature for op in ops[calibrate_on]))], input_shape,
            repeats=repeats)
        table.save(table_path)
    measured = measure_latencies(
        {name: LogitsModule(net) for name, net in networks.items()},
        input_shape, rounds, repeats=repeats)
    return {name: NetworkCosts(
        flops=conv_linear_macs(net, input_shape),
        params=float(sum(p.numel() for p in net.parameters())),
        lut_ms=table.latency(op.signature for op in ops[name]),
        measured_ms=measured[name])
        for name, net in networks.items()}
