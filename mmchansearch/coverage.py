"""How much of a model the toolbox can search, and whether it counts and
exports it exactly.

One call, :func:`check_coverage`, builds the supernet of a config (plain
mmpretrain classifier or toolbox config), and reports:

- the channel groups found, the output channels of conv and linear layers
  that are searchable or fixed, and the share of the FLOPs in layers that
  touch a searchable group;
- the full model's FLOPs and params from the estimator against fvcore's
  conv + linear count and ``sum(p.numel())`` of the unmodified model;
- a random subnet: the largest |logit difference| between the supernet at
  its widths and the exported static model, and the static model's FLOPs
  (fvcore) and params against the estimator.

A model that fails anywhere gets a report holding the error text, so a
table over a model zoo always completes (``tools/analysis_tools/
coverage.py``, ``docs/model_zoo.md``).
"""
from __future__ import annotations

import copy
import random
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from fvcore.nn import FlopCountAnalysis
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .analysis import LogitsModule, forward_logits
from .channel_cfg import ChannelConfig
from .export import export_subnet
from .models.algorithms import ChannelSupernet
from .registry import MODELS
from .supernet import build_supernet, supernet_model_cfg

# fvcore operator names that are conv or linear multiply-accumulates.
CONV_LINEAR_OPS = ('conv', 'linear', 'addmm', 'matmul')


@dataclass
class CoverageReport:
    """What :func:`check_coverage` found for one model.

    Attributes:
        model: the model's name (the config file's stem).
        input_shape: (C, H, W) the model was traced at.
        groups: searchable channel groups.
        searchable_channels: output channels of conv and linear layers in
            a searchable group.
        fixed_channels: output channels of the other conv and linear layers
            (the classifier's output included).
        searchable_flops: share of the FLOPs in layers whose input or
            output group is searchable.
        seconds: time to build the supernet (trace, analysis, dynamic
            layers).
        flops: the estimator's FLOPs of the full model.
        fvcore_flops: fvcore's conv + linear count of the unmodified model.
        params: the estimator's params of the full model.
        torch_params: ``sum(p.numel())`` of the unmodified model.
        logit_diff: max |logits of the supernet at a random subnet - logits
            of the exported static model|, relative to max |logits|.
        subnet_flops: the estimator's FLOPs of that subnet.
        static_flops: fvcore's conv + linear count of the exported model.
        subnet_params: the estimator's params of that subnet.
        static_params: ``sum(p.numel())`` of the exported model.
        fixed: the analysis' reasons for fixed channels.
        error: the error text of a model that failed (then the fields it
            did not reach are None).
    """
    model: str
    input_shape: tuple[int, int, int]
    groups: int | None = None
    searchable_channels: int | None = None
    fixed_channels: int | None = None
    searchable_flops: float | None = None
    seconds: float | None = None
    flops: float | None = None
    fvcore_flops: float | None = None
    params: float | None = None
    torch_params: float | None = None
    logit_diff: float | None = None
    subnet_flops: float | None = None
    static_flops: float | None = None
    subnet_params: float | None = None
    static_params: float | None = None
    fixed: tuple[str, ...] = ()
    error: str | None = None

    @property
    def exact(self) -> bool:
        """The full model's FLOPs and params equal fvcore's and torch's."""
        return self.flops is not None and self.flops == self.fvcore_flops \
            and self.params == self.torch_params

    @property
    def export_exact(self) -> bool | None:
        """The exported subnet's FLOPs and params equal the estimate (None
        when no subnet was exported)."""
        if self.static_flops is None:
            return None
        return self.subnet_flops == self.static_flops \
            and self.subnet_params == self.static_params

    def to_dict(self) -> dict:
        """The report as JSON-ready data, with :attr:`exact` and
        :attr:`export_exact`."""
        return dict(asdict(self), input_shape=list(self.input_shape),
                    fixed=list(self.fixed), exact=self.exact,
                    export_exact=self.export_exact)


def conv_linear_flops(model: nn.Module, inputs: torch.Tensor) -> int:
    """fvcore's conv + linear count (multiply-accumulates) of one forward
    of ``model`` (an mmengine model runs in 'tensor' mode)."""
    if isinstance(model, BaseModel):
        model = LogitsModule(model)
    counter = FlopCountAnalysis(model.eval(), inputs)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    by_operator = counter.by_operator()
    return sum(by_operator.get(op, 0) for op in CONV_LINEAR_OPS)


def num_params(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Gives every batch norm non-trivial statistics and affine params.

    Freshly built models have mean 0, var 1, weight 1, bias 0, which would
    hide a batch norm that slices the wrong channels.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, _BatchNorm) or not module.affine \
                    or module.running_mean is None:
                continue
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.copy_(torch.randn(n, generator=gen) * 0.2)


def build_classifier(cfg: Config) -> nn.Module:
    """The unmodified classifier of a config (a toolbox config's
    architecture), in eval mode."""
    model_cfg = supernet_model_cfg(cfg.model)['architecture']
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return MODELS.build(copy.deepcopy(model_cfg)).eval()


def check_coverage(cfg: Config, name: str,
                   input_shape: Sequence[int] = (3, 64, 64),
                   seed: int = 0) -> CoverageReport:
    """Analyzes, counts and exports one model; never raises.

    Args:
        cfg: a plain mmpretrain classifier config or a toolbox config.
        name: names the model in the report.
        input_shape: (C, H, W) the model is traced and checked at.
        seed: seeds the weights, batch norms, subnet and inputs.

    Returns:
        The report; a failure leaves its error text in ``error``.
    """
    report = CoverageReport(name, tuple(int(s) for s in input_shape))
    try:
        _check(cfg, report, seed)
    except Exception as err:  # a row per model, whatever failed
        where = traceback.extract_tb(err.__traceback__)[-1]
        report.error = (f'{type(err).__name__}: {err} '
                        f'({where.filename.rsplit("/", 1)[-1]}:'
                        f'{where.lineno})').replace('\n', ' ')
    return report


def _check(cfg: Config, report: CoverageReport, seed: int) -> None:
    inputs = torch.randn(2, *report.input_shape,
                         generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    plain = build_classifier(cfg)
    report.fvcore_flops = conv_linear_flops(plain, inputs[:1])
    report.torch_params = num_params(plain)
    del plain

    start = time.perf_counter()
    supernet = build_supernet(cfg, report.input_shape).eval()
    report.seconds = time.perf_counter() - start
    mutator = supernet.mutator
    analysis = mutator.analysis
    report.groups = len(analysis.groups)
    report.fixed = tuple(analysis.fixed)
    _count_channels(supernet, report)
    full = mutator.estimate(mutator.max_widths)
    report.flops, report.params = full['flops'], full['params']
    layer_flops = mutator.estimator.layer_flops(mutator.max_widths)
    searchable = sum(
        layer_flops[name] for name, info in analysis.layers.items()
        if info.input_groups() or info.output_groups())
    report.searchable_flops = searchable / full['flops'] \
        if full['flops'] else 0.0
    if not analysis.groups:
        return

    randomize_batch_norms(supernet.architecture, seed)
    choices = mutator.sample(random.Random(seed))
    static = export_subnet(supernet, ChannelConfig(choices))
    with torch.no_grad():
        expected = forward_logits(supernet, inputs)
        got = forward_logits(static, inputs)
    scale = max(float(expected.abs().max()), 1e-12)
    report.logit_diff = float((got - expected).abs().max()) / scale
    usage = mutator.estimate(choices)
    report.subnet_flops, report.subnet_params = usage['flops'], \
        usage['params']
    report.static_flops = conv_linear_flops(static, inputs[:1])
    report.static_params = num_params(static)


def _count_channels(supernet: ChannelSupernet,
                    report: CoverageReport) -> None:
    """Output channels of conv and linear layers, searchable or fixed (the
    analysis' fixed layers: their ``out_channels``/``out_features``)."""
    analysis = supernet.mutator.analysis
    searchable = fixed = 0
    for info in analysis.layers.values():
        if info.kind not in ('conv', 'linear'):
            continue
        for group, width in info.output_layout():
            if group is None:
                fixed += width
            else:
                searchable += width
    for name in analysis.fixed_layers:
        module = supernet.architecture.get_submodule(name)
        fixed += getattr(module, 'out_channels',
                         getattr(module, 'out_features', 0))
    report.searchable_channels, report.fixed_channels = searchable, fixed
