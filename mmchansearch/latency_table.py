"""Latency lookup tables measured on the user's own device.

A table maps op signatures (what an op computes and at which input shape)
to the median latency of that op, in milliseconds, measured on one device
with one thread count and torch version (recorded in its ``meta``).
This module knows ops, not search spaces: it describes a conv or linear
layer as the op it runs at given widths (:func:`layer_op`), times ops
(:func:`measure_latency`, :func:`build_table`), fits a table to whole
networks (:func:`calibrate`) and lists the ops of any static network
(:func:`network_ops`). Which ops a search space needs comes from its
algorithm: FBNet-style block choices (:meth:`DNAS.latency_ops`) or every
analyzed layer at the candidate widths of its channel groups
(:mod:`mmchansearch.channel_latency`, which also turns a table into the
latency of any channel choice).
"""
from __future__ import annotations

import copy
import ctypes
import functools
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.utils import ProgressBar
from torch import nn

from .analysis import LogitsModule, forward_logits
from .errors import ConfigError, LatencyTableError
from .fileio import atomic_write_text
from .layer_kinds import LAYER_KINDS

BUILD_HINT = ('build it with `python tools/build_latency_lut.py CONFIG '
              '--device {device} -o {path}`')


@dataclass(frozen=True)
class OpSpec:
    """An op to measure.

    Attributes:
        signature: the table key: equal signatures are the same op.
        build: returns the module (on the CPU, any weights).
        input_shape: (C, H, W) or (features, ) of one input sample.
    """
    signature: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]


@dataclass
class LatencyTable:
    """Measured op latencies (ms) and how they were measured.

    Ops timed alone run faster than inside a network (their weights stay in
    the caches between runs), so a table can carry a calibration ``scale``
    in its meta, fitted on a few whole networks (:func:`calibrate`);
    lookups return entries times the scale.

    Attributes:
        entries: signature -> median latency in milliseconds.
        meta: device, device name, threads, torch version, batch size,
            warm-up, repeats and calibration.
        source: the file it came from, for messages.
    """
    entries: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = '<table>'

    @property
    def scale(self) -> float:
        """The calibration factor every entry is multiplied by (see
        :func:`calibrate`)."""
        return float(self.meta.get('scale', 1.0))

    def __getitem__(self, signature: str) -> float:
        """The calibrated latency of an op (ms)."""
        try:
            return self.entries[signature] * self.scale
        except KeyError:
            device = self.meta.get('device', 'cpu')
            raise LatencyTableError(
                f'latency table {self.source} has no entry for op '
                f'{signature!r} (it was built for another search space or '
                f'width range); '
                + BUILD_HINT.format(device=device, path=self.source)
                + '.') from None

    def latency(self, signatures: Iterable[str]) -> float:
        """The summed latency of ops, in milliseconds."""
        return sum(self[s] for s in signatures)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the table as JSON, atomically."""
        atomic_write_text(path, json.dumps(
            dict(meta=self.meta, entries=self.entries), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike,
             device: str | None = None) -> LatencyTable:
        """Reads a table; checks it was built where it is used.

        Args:
            path: the JSON file.
            device: 'cpu' or 'cuda' the table will predict for; a table of
                another device is refused. A different torch version or
                thread count only warns.

        Raises:
            LatencyTableError: missing or malformed file, other device.
        """
        path = os.fspath(path)
        hint = BUILD_HINT.format(device=device or 'cpu', path=path)
        if not os.path.isfile(path):
            raise LatencyTableError(f'latency table {path}: no such file; '
                                    f'{hint}.')
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LatencyTableError(
                f'latency table {path}: not valid JSON ({err}); rebuild it: '
                f'{hint}.') from None
        entries = data.get('entries') if isinstance(data, dict) else None
        if not isinstance(entries, dict) or not all(
                isinstance(v, (int, float)) and v >= 0
                for v in entries.values()):
            raise LatencyTableError(
                f'latency table {path}: expected {{"meta": {{...}}, '
                f'"entries": {{signature: milliseconds}}}} with non-negative '
                f'numbers; rebuild it: {hint}.')
        table = cls({str(k): float(v) for k, v in entries.items()},
                    dict(data.get('meta') or {}), path)
        if device is not None:
            table.check_device(device)
        return table

    def check_device(self, device: str) -> None:
        """Refuses a table of another device; warns on other software."""
        built = self.meta.get('device')
        if built is not None and built != device:
            raise LatencyTableError(
                f'latency table {self.source} was measured on {built!r}, not '
                f'{device!r}; latencies do not transfer between devices: '
                + BUILD_HINT.format(device=device, path='lut.json') + '.')
        here = measurement_meta(device)
        for key in ('torch', 'threads', 'device_name'):
            if key in self.meta and self.meta[key] != here[key]:
                warnings.warn(
                    f'latency table {self.source} was measured with {key} '
                    f'{self.meta[key]!r}, this process has {here[key]!r}; '
                    'its latencies may not hold here.', stacklevel=2)


def _require_device(device: str) -> None:
    if device == 'cuda' and not torch.cuda.is_available():
        raise ConfigError('--device cuda: no CUDA device is available here; '
                          'measure on the device the model will run on.')


def measurement_meta(device: str) -> dict[str, Any]:
    """What a measurement depends on: device, its name, threads, torch."""
    _require_device(device)
    name = torch.cuda.get_device_name() if device == 'cuda' \
        else platform.processor() or platform.machine()
    return dict(device=device, device_name=name,
                threads=torch.get_num_threads(), torch=torch.__version__)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt options


@functools.cache
def keep_freed_memory() -> bool:
    """Stops glibc from returning freed memory to the system.

    By default large tensors (over 128 KiB) are mapped fresh and given back
    when freed, so each forward of an op on large feature maps pays page
    faults for its outputs, up to 3-4x the op's own time on a CPU, and
    unlike in a network, where the allocator's memory stays warm. With the
    thresholds raised, timings measure the op. Returns whether it applied
    (glibc only).
    """
    try:
        libc = ctypes.CDLL('libc.so.6')
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
                    and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31))
    except (OSError, AttributeError):
        return False


def measure_latency(module: nn.Module, input_shape: Sequence[int],
                    device: str = 'cpu', batch_size: int = 1,
                    warmup: int = 5, repeats: int = 20) -> float:
    """Median latency of one forward of ``module`` in milliseconds.

    Args:
        module: the op, in eval mode, without gradients.
        input_shape: one sample's shape.
        device: 'cpu' or 'cuda' (synchronized around each run). On the
            CPU freed memory is kept (:func:`keep_freed_memory`).
        batch_size: samples per forward.
        warmup: untimed runs first.
        repeats: timed runs; their median is returned.
    """
    keep_freed_memory()
    module = module.to(device).eval()
    inputs = torch.randn(batch_size, *input_shape, device=device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            module(inputs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure_latencies(modules: Mapping[str, nn.Module],
                      input_shape: Sequence[int], rounds: int = 5,
                      **kwargs) -> dict[str, float]:
    """Median latency (ms) of each module over ``rounds`` rounds that time
    every module once in turn (:func:`measure_latency`, ``kwargs`` passed
    on), so a burst of load on a shared machine spoils one round of each,
    not one module's whole measurement."""
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(rounds):
        for name, module in modules.items():
            times[name].append(measure_latency(module, input_shape,
                                               **kwargs))
    return {name: statistics.median(t) for name, t in times.items()}


def build_table(ops: Iterable[OpSpec], device: str = 'cpu',
                batch_size: int = 1, warmup: int = 5, repeats: int = 20,
                table: LatencyTable | None = None) -> LatencyTable:
    """Measures every distinct op once (a progress bar shows how far).

    Args:
        ops: the ops; equal signatures are measured once.
        device: 'cpu' or 'cuda'.
        batch_size: samples per forward.
        warmup: untimed runs per op.
        repeats: timed runs per op (median).
        table: an existing table to extend (its entries are kept).
    """
    _require_device(device)
    distinct = {op.signature: op for op in ops}
    entries = dict(table.entries) if table else {}
    todo = [op for s, op in distinct.items() if s not in entries]
    bar = ProgressBar(len(todo)) if todo else None
    for op in todo:
        entries[op.signature] = measure_latency(
            op.build(), op.input_shape, device, batch_size, warmup, repeats)
        bar.update()
    meta = dict(measurement_meta(device), batch_size=batch_size,
                warmup=warmup, repeats=repeats,
                warm_allocator=keep_freed_memory())
    return LatencyTable(entries, meta)


def calibrate(table: LatencyTable, networks: Sequence[tuple],
              input_shape: Sequence[int], device: str = 'cpu',
              batch_size: int = 1, warmup: int = 5,
              repeats: int = 20) -> None:
    """Fits the table's ``scale`` on whole networks.

    Each network is timed end to end; the scale is the median ratio of the
    measured latency to the sum of its ops' entries, recorded in
    ``table.meta`` with the ratios.

    Args:
        table: the table (its entries uncalibrated).
        networks: (static classifier, function of a table giving the
            network's predicted latency) pairs, e.g. from
            ``sample_network`` of a search algorithm.
        input_shape: one sample's shape.
        device, batch_size, warmup, repeats: as :func:`measure_latency`.
    """

    raw = LatencyTable(table.entries, {}, table.source)
    ratios = []
    for static, predict in networks:
        measured = measure_latency(LogitsModule(static), input_shape, device,
                                   batch_size, warmup, repeats)
        ratios.append(measured / predict(raw))
    table.meta.update(scale=statistics.median(ratios),
                      calibration_ratios=[round(r, 4) for r in ratios])


# ------------------------------------------------------ ops of layers
def layer_op(module: nn.Module, kind: str, cin: int, cout: int,
             in_shape: Sequence[int]) -> OpSpec:
    """The op a conv or linear layer runs at input/output widths cin/cout
    (its kind's handler, :mod:`mmchansearch.layer_kinds`).

    Args:
        module: the layer (static or dynamic); its kernel, stride,
            padding, dilation, groups and bias are read.
        kind: 'conv', 'dwconv' (groups = cin) or 'linear'.
        cin: input channels (features).
        cout: output channels (features).
        in_shape: one input sample's shape; a conv's op is timed at its
            height and width, a linear layer's at (cin, ).

    Returns:
        The op; its signature is the table key.
    """
    return OpSpec(*LAYER_KINDS[kind].op(module, cin, cout, in_shape))


def record_input_shapes(modules: Mapping[str, nn.Module],
                        run: Callable[[], Any]) -> dict[str, tuple[int, ...]]:
    """The input shape (one sample) of each module during ``run()``."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable:
        def hook(module, args, output) -> None:
            shapes.setdefault(name, tuple(args[0].shape[1:]))
        return hook

    handles = [module.register_forward_hook(record(name))
               for name, module in modules.items()]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def network_ops(model: nn.Module, input_shape: Sequence[int]
                ) -> list[OpSpec]:
    """Every conv and linear layer of a (static) network as the op it runs
    at its input shape, in forward order; any architecture, so networks of
    different search spaces are predicted by one table."""
    layers = {name: module for name, module in model.named_modules()
              if isinstance(module, (nn.Conv2d, nn.Linear))}
    was_training = model.training
    try:
        with torch.no_grad():
            shapes = record_input_shapes(layers, lambda: forward_logits(
                model.eval(), torch.zeros(1, *input_shape)))
    finally:
        model.train(was_training)
    ops = []
    for name, shape in shapes.items():
        module = layers[name]
        if isinstance(module, nn.Linear):
            ops.append(layer_op(module, 'linear', module.in_features,
                                module.out_features, shape))
        else:  # the conv's own groups (depthwise included)
            ops.append(layer_op(module, 'conv', module.in_channels,
                                module.out_channels, shape))
    return ops


def copy_op(module: nn.Module) -> Callable[[], nn.Module]:
    """An :attr:`OpSpec.build` that copies an existing module."""
    return lambda: copy.deepcopy(module)
