"""Channel-dependency analysis.

One forward pass of a real model is traced; the autograd graph is walked
backwards from the input of every channel-carrying layer to the layers that
produce those channels. Producers whose outputs meet in an element-wise op
(residual sums, SE scaling) must keep the same width, so they are merged with
a union-find into one *channel group*, named after its first producer.

Vocabulary:
    producer: a conv (not depthwise) or linear layer; its output channels
        belong to a group.
    consumer: a conv or linear layer reading a group as its input channels.
    follower: a BatchNorm or depthwise conv; its channels equal its input's.
        A layer's own forward may do more between its input and output
        (mmcv's Conv2dAdaptivePadding pads first, timm's BatchNormAct2d
        activates after): the walk goes from a follower's output straight
        to its input, and takes a norm layer's normalization from inside it.

A grouped conv with g groups needs its input and output widths to stay
multiples of g; each group records that as its ``divisor``.

A concatenation along the channel dim (DenseNet, multi-branch fusions)
keeps the groups of its inputs side by side: a layer reading it has *input
parts*, the ordered groups (or fixed widths) it reads, and slices each part
at its own offset. Element-wise ops on two concatenations with the same
parts join the parts one by one.

A split of channels (a slice, ``split``, ``chunk``: CSPNet's halves,
ShuffleNetV2's branches, Res2Net's scales) cuts its producer's output in
parts at the split's offsets (the producer writes its output in parts).
Whether the split's sizes follow the runtime width (``x.shape[1] // 2``)
or are constants (``torch.split(x, 14, 1)``), one trace cannot tell: each
split is taken as *even* (equal pieces of tied widths), else *constant*
(the channels before its last constant offset fixed), else *fixed*, the
first that a forward at reduced widths confirms (every layer getting the
channels the analysis expects). A channel shuffle of a concatenation whose
blocks have the same parts ties them block by block.

Anything the walk cannot explain (a shuffle of unlike parts, reshapes that
mix channels, per-channel parameters outside known layers) leaves the
channels it touches fixed, with a warning naming the module and the op.

The trace also counts every conv and linear computation of the forward at
the function level (the torch functions behind fvcore's 'conv', 'linear',
'addmm' and 'matmul' counts). One outside the sliceable layers (a conv
subclass with an unknown forward of its own, a Conv1d, an ``F.linear`` in
a custom forward) is a *fixed layer*: its cost is a constant of the FLOPs,
named after the innermost module running it. A conv or matrix product hidden
inside another torch function (``F.multi_head_attention_forward``) cannot be
counted so; the analysis lists it as *uncounted* and the estimators refuse
the model rather than count it low.
"""
from __future__ import annotations

import inspect
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .dynamic_ops import parts_in_use, sliceable_kind
from .errors import ConfigError
from .layer_kinds import LAYER_KINDS

INPUT = '<input>'
OUTPUT = '<output>'

# Autograd ops that keep each channel in place (element-wise, spatial-only).
_CHANNEL_WISE_OPS = {
    'Relu', 'Hardtanh', 'Sigmoid', 'Hardsigmoid', 'Hardswish', 'Silu', 'Gelu',
    'Tanh', 'Elu', 'LeakyRelu', 'Softplus', 'Mish', 'Clamp', 'ClampMin',
    'ClampMax', 'Threshold', 'Clone', 'ToCopy', 'NativeDropout', 'Add', 'Sub',
    'Mul', 'Div', 'Neg', 'MaxPool2DWithIndices', 'AvgPool2D',
    'AdaptiveAvgPool2D', 'AdaptiveMaxPool2D', 'NativeBatchNorm',
    'CudnnBatchNorm', 'Expand', 'Contiguous', 'UpsampleNearest2D',
    'UpsampleBilinear2D'
}
_NORM_OPS = {'NativeBatchNorm', 'CudnnBatchNorm'}
# Shape ops that keep channels only when every dim after the channel is 1.
_SQUEEZE_OPS = {'View', 'Reshape', 'ReshapeAlias', 'UnsafeView', 'Squeeze',
                'Unsqueeze', 'Flatten'}
# Views a channel shuffle is made of.
_VIEW_OPS = {'View', 'UnsafeView', 'Reshape', 'ReshapeAlias'}
# Reductions that keep channels only when they reduce spatial dims alone.
_REDUCE_OPS = {'Mean', 'Sum'}
_TRAILING_DIGITS = re.compile(r'(Backward)?\d*$')
# Autograd ops that take a range of channels (x[:, a:b], narrow, split,
# chunk): a *split* of their input's channels.
_SLICE_OPS = {'Slice', 'Split', 'SplitWithSizes'}
# How a split's sizes are taken, tried in this order until a reduced-width
# forward confirms one: 'even' (equal pieces that follow the input's width,
# as ``x.shape[1] // 2`` or ``chunk``: the pieces' parts share widths),
# 'constant' (sizes fixed in the code: the channels before the last
# constant offset stay fixed), 'fixed' (the whole input stays fixed).
SPLIT_MODES = ('even', 'constant', 'fixed')


@dataclass
class LayerInfo:
    """What the trace learned about one channel-carrying layer.

    Attributes:
        name: module name in the model.
        kind: 'conv', 'dwconv', 'linear' or 'bn'.
        in_group: group of the input channels, or None when fixed.
        out_group: group of the output channels, or None when fixed.
        in_channels: input channels of the unmodified layer.
        out_channels: output channels of the unmodified layer.
        output_positions: output positions per sample (H*W for convs, the
            number of rows for linear layers); FLOPs scale with it.
        in_parts: for a layer reading a concatenation or the output of a
            producer written in parts (``in_group`` is None then): (group
            or None when fixed, max width) of every part, in channel
            order; None otherwise (and where every part is fixed).
        out_parts: for a conv or linear layer whose output is added to a
            concatenation or split, the parts it writes (``out_group`` is
            None then), as ``in_parts``; None otherwise.
        input_shape: one sample's input shape (at the first call) in the
            traced forward, e.g. (C, H, W); latency ops are timed at it.
    """
    name: str
    kind: str
    in_group: str | None
    out_group: str | None
    in_channels: int
    out_channels: int
    output_positions: int
    in_parts: tuple[tuple[str | None, int], ...] | None = None
    out_parts: tuple[tuple[str | None, int], ...] | None = None
    input_shape: tuple[int, ...] = ()

    def input_width(self, widths: Mapping) -> Any:
        """Input channels at group name -> width (missing groups: max);
        real-valued widths give a real value."""
        return sum(widths.get(group, width) if group else width
                   for group, width in self.input_layout())

    def output_width(self, widths: Mapping) -> Any:
        """Output channels at group name -> width, as :meth:`input_width`
        (a batch norm's and a depthwise conv's are its input channels)."""
        if not LAYER_KINDS[self.kind].produces:
            return self.input_width(widths)
        return sum(widths.get(group, width) if group else width
                   for group, width in self.output_layout())

    def input_groups(self) -> list[str]:
        """The searchable groups of its input channels."""
        return [group for group, _ in self.input_layout() if group]

    def output_groups(self) -> list[str]:
        """The searchable groups of its output channels."""
        return [group for group, _ in self.output_layout() if group]

    def input_layout(self) -> tuple[tuple[str | None, int], ...]:
        """Its input as parts: ``in_parts``, or one part."""
        return self.in_parts or ((self.in_group, self.in_channels), )

    def output_layout(self) -> tuple[tuple[str | None, int], ...]:
        """Its output as parts: ``out_parts``, or one part."""
        return self.out_parts or ((self.out_group, self.out_channels), )


@dataclass
class ChannelGroup:
    """Channels that must share one width.

    Attributes:
        name: name of the group's first producer.
        max_width: width in the unmodified model.
        divisor: widths must be multiples of it (grouped convs; else 1).
        producers: layers whose output channels form the group.
        members: every layer whose input or output is in the group.
    """
    name: str
    max_width: int
    divisor: int = 1
    producers: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


@dataclass
class FixedLayer:
    """A conv or linear computation outside the sliceable layers.

    Its channels stay fixed, so its cost is the same for every width.
    (:func:`count_conv_linear` describes the own calls of any module so.)

    Attributes:
        name: the innermost module running it ('' for the model itself).
        ops: the torch functions it calls, e.g. ['conv2d'].
        macs: multiply-accumulates per sample, summed over its calls.
        output_positions: the positions its cost is counted at, summed
            over its calls (a conv's output H*W, a transposed conv's input
            H*W, the rows of a linear layer or matrix product).
    """
    name: str
    ops: list[str] = field(default_factory=list)
    macs: int = 0
    output_positions: int = 0


@dataclass
class ChannelAnalysis:
    """Result of :func:`analyze_channels`.

    Attributes:
        groups: searchable groups in execution order.
        layers: every traced layer in execution order.
        fixed: human-readable reasons for channels kept fixed.
        input_shape: (C, H, W) the model was traced with.
        fixed_layers: conv and linear computations outside ``layers``, by
            module name.
        uncounted: 'module: function' for every torch function that ran a
            conv or matrix product the trace could not count.
        splits: every split of channels on the way to a layer ('module
            (op)') -> how its sizes are taken, one of :data:`SPLIT_MODES`
            (confirmed at reduced widths).
    """
    groups: dict[str, ChannelGroup]
    layers: dict[str, LayerInfo]
    fixed: list[str]
    input_shape: tuple[int, int, int]
    fixed_layers: dict[str, FixedLayer] = field(default_factory=dict)
    uncounted: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)


class _UnionFind:

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, items: Iterable[str]) -> None:
        roots = [self.find(i) for i in items]
        for root in roots[1:]:
            self.parent[root] = roots[0]


def _op_name(node) -> str:
    return _TRAILING_DIGITS.sub('', type(node).__name__)


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return (conv.groups > 1 and conv.groups == conv.in_channels
            and conv.out_channels == conv.in_channels)


def _keeps_channels(node, output_shape: tuple | None) -> bool:
    """Whether a view-like op maps (N, C, 1, ...) to (N, C, 1, ...)."""
    sizes = getattr(node, '_saved_self_sym_sizes', None)
    if sizes is None or output_shape is None:
        return False
    sizes = tuple(int(s) for s in sizes)
    return (len(sizes) >= 2 and len(output_shape) >= 2
            and sizes[:2] == tuple(output_shape[:2])
            and math.prod(sizes[2:]) == 1
            and math.prod(output_shape[2:]) == 1)


def _layer_nodes(output_node, input_node) -> set:
    """The autograd nodes between a layer's input and its output: those of
    its own forward (a norm layer's normalization, and then an activation
    of its own, as in timm's BatchNormAct2d)."""
    found, stack = set(), [output_node]
    while stack:
        node = stack.pop()
        if node is None or node is input_node or node in found \
                or _op_name(node) == 'AccumulateGrad':
            continue
        found.add(node)
        stack.extend(n for n, _ in node.next_functions)
    return found


def _reduces_spatial_only(node) -> bool:
    """Whether a mean/sum reduces only dims after the channel dim."""
    sizes = getattr(node, '_saved_self_sym_sizes', None)
    dims = getattr(node, '_saved_dim', None)
    if sizes is None or dims is None or len(sizes) < 3:
        return False
    return all(d % len(sizes) >= 2 for d in dims)


# Channels of one part of a tensor: the producers (or INPUT) whose outputs
# they are, and the unsupported ops on the way. A tensor's *layout* is its
# parts in channel order: one, unless a concatenation put several side by
# side.
_Part = tuple[frozenset, frozenset]
_UNSIGNED = 2 ** 64  # autograd saves a negative dim as an unsigned int
# the most walks of the graph to find producers whose output is written in
# parts (a walk can find more as parts meet other producers: ShuffleNetV1
# needs one per stage)
_SPLIT_ROUNDS = 16


def part_item(producer: str, index: int) -> str:
    """The union-find key of one part of a producer's output."""
    return f'{producer}#{index}'


def output_items(producer: str, splits: Mapping) -> list[str]:
    """The union-find keys of a producer's output: its name, or one per
    part it is written in."""
    if producer not in splits:
        return [producer]
    return [part_item(producer, i) for i in range(len(splits[producer]))]


def _signed(value: int) -> int:
    """A saved int that autograd stored unsigned when negative."""
    value = int(value)
    return value - _UNSIGNED if value >= _UNSIGNED // 2 else value


def _slice_ranges(node) -> tuple[int, list[tuple[int, int]], list[bool]] \
        | None:
    """(input channels, the channel range of every output, whether each
    range's end is the input's end whatever its width) of a slice or split
    along dim 1; None for any other node."""
    sizes = getattr(node, '_saved_self_sym_sizes', None)
    op = _op_name(node)
    if op not in _SLICE_OPS or sizes is None or len(sizes) < 2 \
            or _signed(node._saved_dim) % len(sizes) != 1:
        return None
    width = int(sizes[1])
    if op == 'Slice':
        if int(node._saved_step) != 1:
            return None
        start, end = _signed(node._saved_start), _signed(node._saved_end)
        start, end = (min(max(v + width if v < 0 else v, 0), width)
                      for v in (start, end))
        return width, [(start, end)], [end == width]
    if op == 'Split':
        size = int(node._saved_split_size)
        ranges = [(a, min(a + size, width)) for a in range(0, width, size)]
        return width, ranges, [False] * (len(ranges) - 1) + [True]
    ends = list(itertools.accumulate(int(v) for v in node._saved_split_sizes))
    return width, list(zip([0] + ends[:-1], ends)), [False] * len(ends)


@dataclass
class _SplitSite:
    """Every split of one tensor's channels (the slices of one input).

    Attributes:
        key: (autograd node, output index) of the tensor split.
        width: its channels.
        module: the innermost module running the (first) split.
        op: the autograd op, e.g. 'Slice'.
        order: position of its first split in the forward.
        ranges: node -> the channel range of each of its outputs.
        open_ends: the ranges whose end is the input's end at any width.
    """
    key: tuple
    width: int
    module: str
    op: str
    order: int
    ranges: dict = field(default_factory=dict)
    open_ends: set = field(default_factory=set)

    def pieces(self) -> list[tuple[int, int]]:
        """Every range taken, in channel order."""
        return sorted({r for ranges in self.ranges.values() for r in ranges})

    def even(self) -> bool:
        """Whether the ranges are k >= 2 equal pieces covering all."""
        pieces = self.pieces()
        size = self.width // max(len(pieces), 1)
        return len(pieces) >= 2 and pieces == [
            (i * size, (i + 1) * size) for i in range(len(pieces))] \
            and len(pieces) * size == self.width

    def constant_end(self) -> int:
        """The last channel offset the code gives as a constant (each
        range's start, and its end unless it is the input's end): the
        channels before it must keep their width."""
        return max([start for start, _ in self.pieces()]
                   + [end for end in (r[1] for r in self.pieces()
                                      if r not in self.open_ends)])

    def signature(self) -> tuple:
        """What sites computed by the same code share: the module's name
        without indices, the op and the ranges relative to the width."""
        return (re.sub(r'\d+', '#', self.module), self.op,
                tuple((a / self.width, b / self.width)
                      for a, b in self.pieces()))

    def describe(self) -> str:
        """'module (op)', as warnings and :attr:`ChannelAnalysis.splits`
        name it."""
        return f'{self.module or "model"} ({self.op})'


class _GraphWalker:
    """Finds the producers behind an autograd node, memoized.

    Args:
        producer_nodes: output node -> name of the conv/linear making it.
        transparent_nodes: a depthwise conv's output node -> its input
            node (its channels are its input's).
        norm_nodes: normalization nodes of sliceable norm layers.
        output_shapes: output shape of every node made by a torch function.
        widths: producer name (or INPUT) -> its output channels.
        conv_groups: producer name -> its conv groups (1 if not grouped).
        splits: producer name -> the widths of the parts its output is
            written in (:func:`part_item` names them), found by an earlier
            walk; the walk asks for more in ``new_splits``.
        sites: (node, output index) -> the :class:`_SplitSite` splitting
            that tensor's channels.
        modes: site key -> its mode (one of :data:`SPLIT_MODES`); by
            default 'even' where the pieces are even, else 'constant'.
    """

    def __init__(self, producer_nodes: dict, transparent_nodes: dict,
                 norm_nodes: set, output_shapes: dict, widths: dict,
                 conv_groups: dict, splits: dict, sites: dict | None = None,
                 modes: dict | None = None) -> None:
        self.producer_nodes = producer_nodes
        self.transparent_nodes = transparent_nodes
        self.norm_nodes = norm_nodes
        self.output_shapes = output_shapes
        self.widths = dict(widths)
        for name, part_widths in splits.items():
            for index, width in enumerate(part_widths):
                self.widths[part_item(name, index)] = width
        self.conv_groups = conv_groups
        self.splits = splits
        self.new_splits: dict[str, tuple[int, ...]] = {}
        self.memo: dict = {}
        # (producers, groups) of every channel shuffle passed: the widths
        # of their group must be multiples of the shuffle's groups
        self.divisors: list[tuple[frozenset, int]] = []
        self.sites = sites or {}
        self.modes = modes or {}
        # site key -> (its input's layout cut at the pieces, or None where
        # it cannot be, mode taken)
        self.site_layouts: dict = {}
        self.ties: list[list[frozenset]] = []  # producers of equal width
        # (producers, why, where) kept fixed by a split
        self.pinned: list[tuple[frozenset, str, str]] = []
        # site key -> (mode, producers of its parts that may change width)
        self.site_items: dict[tuple, tuple[str, frozenset]] = {}

    def sources(self, node, index: int = 0) -> tuple[frozenset, frozenset]:
        """(producer names or INPUT, unsupported op descriptions) behind
        ``node``'s output ``index``, all parts merged."""
        return self.sources_of([self.layout(node, index)])

    def layout(self, node, index: int = 0) -> tuple[_Part, ...]:
        """The parts of the channels of ``node``'s output ``index``, in
        channel order."""
        if node is None:
            return ((frozenset([INPUT]), frozenset()), )
        key = (node, index) if _op_name(node) in _SLICE_OPS else node
        if key not in self.memo:
            self.memo[key] = self._visit(node, index)
        return self.memo[key]

    def part_width(self, part: _Part) -> int | None:
        """Channels of a part (those of any producer in it; None when it
        has none)."""
        return next((self.widths[name] for name in sorted(part[0])), None)

    def combine(self, layouts: list[tuple[_Part, ...]],
                unsupported: Iterable[str] = ()) -> tuple[_Part, ...]:
        """The layout of channels met element-wise: parts joined one by
        one when the layouts have the same parts, else one part (with the
        mix as an unsupported op)."""
        bad = frozenset(unsupported)
        if not layouts:
            return ((frozenset(), bad), )
        shapes = {tuple(self.part_width(p) for p in layout)
                  for layout in layouts}
        if len(shapes) > 1 and any(len(layout) > 1 for layout in layouts):
            self._ask_split(layouts)
            found, mixed = self.sources_of(layouts)
            return ((found, mixed | bad
                     | {'element-wise op on concatenations with other '
                        'parts'}), )
        return tuple(
            (frozenset().union(*(p[0] for p in parts)),
             frozenset().union(*(p[1] for p in parts)) | bad)
            for parts in zip(*layouts))

    def _ask_split(self, layouts: list[tuple[_Part, ...]]) -> None:
        """Asks for the producers of one-part layouts met element-wise
        with a concatenation to write their output in its parts (as
        ShuffleNetV1's residual added to a concatenation): where every
        such producer is as wide as the concatenation, and a grouped conv
        has parts in multiples of its groups."""
        shapes = {tuple(self.part_width(p) for p in layout)
                  for layout in layouts if len(layout) > 1}
        if len(shapes) != 1:
            return
        target = shapes.pop()
        if None in target:
            return
        names = set()
        for layout in layouts:
            if len(layout) > 1:
                continue
            found, bad = layout[0]
            if bad or not found or any(
                    name not in self.conv_groups or name in self.splits
                    or self.widths[name] != sum(target)
                    or any(w % self.conv_groups[name] for w in target)
                    for name in found):
                return
            names |= found
        if all(self.new_splits.get(name, target) == target
               for name in names):
            self.new_splits.update(dict.fromkeys(names, target))

    @staticmethod
    def sources_of(layouts: Iterable[tuple[_Part, ...]]
                   ) -> tuple[frozenset, frozenset]:
        """Every part of ``layouts`` merged into one."""
        parts = [part for layout in layouts for part in layout]
        return (frozenset().union(*(found for found, _ in parts)),
                frozenset().union(*(bad for _, bad in parts)))

    def _channel_cat(self, node) -> bool:
        """Whether a Cat node concatenates along the channel dim (1)."""
        shape = self.output_shapes.get(node)
        dim = int(getattr(node, '_saved_dim', -1))
        if dim >= _UNSIGNED // 2:
            dim -= _UNSIGNED
        return shape is not None and len(shape) >= 2 \
            and dim % len(shape) == 1

    def _shuffle(self, node) -> tuple | None:
        """(input node, groups) when ``node`` ends a channel shuffle (as
        ShuffleNet's): a view of (N, C, ...) as (N, g, C/g, ...), dims 1
        and 2 swapped, viewed back as (N, C, ...). It keeps the width, so
        its output is its input's group (the order of the channels is
        the shuffle's at every width)."""
        if _op_name(node) not in _VIEW_OPS:
            return None
        sizes = getattr(node, '_saved_self_sym_sizes', None)
        out = self.output_shapes.get(node)
        if sizes is None or out is None or len(sizes) != len(out) + 1:
            return None
        batch, per_group, groups, *rest = (int(v) for v in sizes)
        if tuple(out) != (batch, per_group * groups, *rest):
            return None
        swap = node.next_functions[0][0]
        while swap is not None and _op_name(swap) in ('Clone', 'Contiguous'):
            swap = swap.next_functions[0][0]
        if swap is None or _op_name(swap) != 'Transpose' or {
                int(getattr(swap, '_saved_dim0', -1)) % len(sizes),
                int(getattr(swap, '_saved_dim1', -1)) % len(sizes)} != {1, 2}:
            return None
        split = swap.next_functions[0][0]
        if split is None or _op_name(split) not in _VIEW_OPS \
                or self.output_shapes.get(split) != (
                    batch, groups, per_group, *rest):
            return None
        return split.next_functions[0], groups

    def _sized(self, node, index: int, layout: tuple[_Part, ...]) -> bool:
        """Whether the parts' widths add up to the channels of ``node``'s
        output ``index`` (a child without autograd node is the model
        input)."""
        widths = [self.part_width(part) for part in layout]
        if None in widths:
            return False
        ranges = _slice_ranges(node) if node is not None else None
        if ranges is not None:
            start, end = ranges[1][index]
            return sum(widths) == end - start
        shape = self.output_shapes.get(node) if node is not None \
            else (None, self.widths[INPUT])
        return shape is not None and len(shape) >= 2 \
            and sum(widths) == shape[1]

    def _visit(self, node, index: int) -> tuple[_Part, ...]:
        site = self.sites.get(node.next_functions[0]) \
            if _op_name(node) in _SLICE_OPS else None
        if site is not None and node in site.ranges:
            return self._piece(site, site.ranges[node][index])
        if node in self.producer_nodes:
            name = self.producer_nodes[node]
            return tuple((frozenset([item]), frozenset())
                         for item in output_items(name, self.splits))
        if node in self.transparent_nodes:  # its layer's input
            return self.layout(*self.transparent_nodes[node])
        op = _op_name(node)
        children = node.next_functions
        if op == 'Cat' and self._channel_cat(node):
            layouts = [self.layout(*child) for child in children]
            if all(self._sized(*child, layout)
                   for child, layout in zip(children, layouts)):
                return tuple(part for layout in layouts for part in layout)
            found, bad = self.sources_of(layouts)
            return ((found, bad | {'Cat of channels the walk cannot size'}), )
        shuffle = self._shuffle(node)
        if shuffle is not None:
            source, groups = shuffle
            layout = self.layout(*source)
            if len(layout) == 1:
                self.divisors.append((layout[0][0], groups))
                return layout
            if self._shuffle_blocks(layout, groups):
                return layout
            found, bad = self.sources_of([layout])
            return ((found, bad | {'channel shuffle of a concatenation'}), )
        unsupported = set()
        inputs = [(n, i) for n, i in node.next_functions if n is not None]
        if op in _SQUEEZE_OPS and not _keeps_channels(
                node, self.output_shapes.get(node)):
            unsupported.add(op)
        elif op in _REDUCE_OPS and not _reduces_spatial_only(node):
            unsupported.add(op)
        elif op not in _CHANNEL_WISE_OPS | _SQUEEZE_OPS | _REDUCE_OPS \
                | {'Cat'}:
            unsupported.add(op)
        elif op in _NORM_OPS and node not in self.norm_nodes:
            unsupported.add(f'{op} of a norm layer that cannot be sliced')
        params = [n for n, _ in inputs if _op_name(n) == 'AccumulateGrad']
        if op not in _NORM_OPS and any(
                p.variable.numel() > 1 for p in params):
            unsupported.add(f'{op} with a per-channel parameter')
        inputs = [(n, i) for n, i in inputs if _op_name(n) != 'AccumulateGrad']
        return self.combine([self.layout(child, i) for child, i in inputs],
                            unsupported)

    def _shuffle_blocks(self, layout: tuple[_Part, ...], groups: int
                        ) -> bool:
        """Whether a channel shuffle of a concatenation keeps its parts:
        where its ``groups`` blocks are parts of the same widths (as
        ShuffleNetV2's two halves), whose widths are then tied block by
        block, so every block has the same channels at every width and
        the shuffle mixes them as it does one group's."""
        widths = [self.part_width(part) for part in layout]
        if None in widths or sum(widths) % groups:
            return False
        size = sum(widths) // groups
        cuts = set(range(size, sum(widths), size))
        if self._cut(layout, cuts, sum(widths)) is None:
            return False
        blocks = [self._subrange(layout, (start, start + size))
                  for start in range(0, sum(widths), size)]
        if len({tuple(self.part_width(p) for p in block)
                for block in blocks}) != 1:
            return False
        self.ties += [[part[0] for part in parts] for parts in zip(*blocks)]
        return True

    # ------------------------------------------------------------ splits
    def _piece(self, site: _SplitSite, span: tuple[int, int]
               ) -> tuple[_Part, ...]:
        """The parts of the channels ``span`` of a split site: those of its
        input cut at the pieces, or (where the input cannot be cut) its
        input's producers, fixed."""
        layout, _ = self._site_layout(site)
        if layout is None:
            found, bad = self.sources_of([self.layout(*site.key)])
            return ((found, bad | {site.op}), )
        parts, start = [], 0
        for part in layout:
            width = self.part_width(part)
            if span[0] <= start and start + width <= span[1]:
                parts.append(part)
            start += width
        return tuple(parts)

    def _site_layout(self, site: _SplitSite) -> tuple:
        """(The site's input layout cut at its pieces or None, its mode),
        memoized; records the ties and fixed parts of its mode."""
        if site.key not in self.site_layouts:
            self.site_layouts[site.key] = self._cut_site(site)
        return self.site_layouts[site.key]

    def _cut_site(self, site: _SplitSite) -> tuple:
        """Cuts the site's input at its pieces and takes its mode: ties
        the pieces' parts ('even'), or keeps the parts before the last
        constant offset ('constant') or all ('fixed') fixed; an even mode
        whose pieces have other parts falls back to constant."""
        layout = self.layout(*site.key)
        mode = self.modes.get(site.key,
                              'even' if site.even() else 'constant')
        if mode == 'even' and not site.even():
            mode = 'constant'
        cuts = {c for piece in site.pieces() for c in piece}
        layout = self._cut(layout, cuts, site.width)
        if layout is None:
            return None, 'fixed'
        if mode == 'even':
            pieces = [self._subrange(layout, piece) for piece in site.pieces()]
            offsets = {c for piece in pieces for c in itertools.accumulate(
                self.part_width(p) for p in piece)}
            cuts |= {start + c for start, _ in site.pieces() for c in offsets}
            layout = self._cut(layout, cuts, site.width)
            if layout is None:
                return None, 'fixed'
            pieces = [self._subrange(layout, piece) for piece in site.pieces()]
            shapes = {tuple(self.part_width(p) for p in piece)
                      for piece in pieces}
            if len(shapes) == 1:
                self.ties += [[part[0] for part in parts]
                              for parts in zip(*pieces)]
                self._record_site(site, mode, layout, 0)
                return layout, mode
            mode = 'constant'
        end = site.constant_end() if mode == 'constant' else site.width
        start, why = 0, (f'{site.op} at constant channel offsets'
                         if mode == 'constant' else
                         f'{site.op} whose sizes neither follow the width '
                         'nor stay constant')
        pinned = set()
        for part in layout:
            start += self.part_width(part)
            if start <= end:
                pinned |= part[0]
        self.pinned.append((frozenset(pinned), why, site.describe()))
        self._record_site(site, mode, layout, end)
        return layout, mode

    def _record_site(self, site: _SplitSite, mode: str,
                     layout: tuple[_Part, ...], end: int) -> None:
        """Notes the producers of the parts after ``end`` (those whose
        width may change) for the check at reduced widths."""
        found, start = set(), 0
        for part in layout:
            if start >= end:
                found |= part[0]
            start += self.part_width(part)
        self.site_items[site.key] = (mode, frozenset(found))

    def _subrange(self, layout: tuple[_Part, ...], span: tuple[int, int]
                  ) -> tuple[_Part, ...]:
        parts, start = [], 0
        for part in layout:
            if span[0] <= start < span[1]:
                parts.append(part)
            start += self.part_width(part)
        return tuple(parts)

    def _cut(self, layout: tuple[_Part, ...], cuts: set, width: int
             ) -> tuple[_Part, ...] | None:
        """``layout`` if every cut falls between its parts; else asks for
        the producers of each part cut to write their output in parts cut
        there (the next walk cuts it) and returns None, as it does when
        a part cannot be cut (the model input, an unsupported op)."""
        widths = [self.part_width(part) for part in layout]
        if None in widths or sum(widths) != width:
            return None
        start, requests = 0, {}
        for part, part_width in zip(layout, widths):
            inner = sorted(c - start for c in cuts
                           if start < c < start + part_width)
            if inner:
                asked = self._refine(part, inner, part_width)
                if asked is None:
                    return None
                requests.update(asked)
            start += part_width
        if not requests:
            return layout
        self.new_splits.update(requests)
        return None

    def _refine(self, part: _Part, cuts: list[int], width: int
                ) -> dict | None:
        """Producer -> the widths of its output's parts with ``part`` also
        cut at ``cuts``; None where a producer cannot write parts."""
        found, bad = part
        if bad or not found:
            return None
        requests = {}
        for item in found:
            name, _, index = item.rpartition('#')
            if not name:
                name, base = item, 0
            else:
                base = sum(self.splits[name][:int(index)])
            if name not in self.conv_groups:
                return None
            current = self.new_splits.get(name) or self.splits.get(name) \
                or (self.widths[name], )
            bounds = set(itertools.accumulate(current)) | {
                base + c for c in cuts}
            widths = tuple(b - a for a, b in itertools.pairwise(
                [0] + sorted(bounds)))
            if any(w % self.conv_groups[name] for w in widths):
                return None
            requests[name] = widths
        return requests


@dataclass
class _Record:
    module: nn.Module
    kind: str
    order: int  # position of the first call in the forward
    calls: list = field(default_factory=list)  # (input node, output node)
    output_positions: int = 0  # summed over calls
    input_shape: tuple = ()  # one sample's input at the first call


def _layer_kind(module: nn.Module) -> str | None:
    """'conv', 'dwconv', 'linear' or 'bn' for sliceable layers (with the
    forward-owning layers dynamic_ops reproduces: mmcv's
    Conv2dAdaptivePadding, timm's BatchNormAct2d); other layers (other
    subclasses with a forward of their own included) are unknown ops."""
    kind = sliceable_kind(module)
    if kind == 'conv' and _is_depthwise(module):
        return 'dwconv'
    return kind


class _ShapeRecorder(TorchFunctionMode):
    """Remembers the output shape of every autograd node made in a forward,
    and the slices and splits made (node -> the innermost module running
    it, in the forward's order)."""

    def __init__(self, module_name: Callable[[], str]) -> None:
        super().__init__()
        self.shapes: dict = {}
        self.slices: dict = {}
        self.module_name = module_name

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        outputs = result if isinstance(result, (tuple, list)) else [result]
        for tensor in outputs:
            if isinstance(tensor, torch.Tensor) \
                    and tensor.grad_fn is not None:
                node = tensor.grad_fn
                self.shapes.setdefault(node, tuple(tensor.shape))
                if _op_name(node) in _SLICE_OPS and node not in self.slices:
                    self.slices[node] = self.module_name()
        return result


def _arg(args: tuple, kwargs: dict, index: int, name: str):
    return args[index] if len(args) > index else kwargs[name]


def _conv_cost(args: tuple, kwargs: dict, output: torch.Tensor
               ) -> tuple[int, int]:
    """(MACs, positions) of a conv: weights per output x outputs."""
    weight = _arg(args, kwargs, 1, 'weight')
    return (output.numel() * math.prod(weight.shape[1:]),
            output.numel() // weight.shape[0])


def _conv_transpose_cost(args: tuple, kwargs: dict, output: torch.Tensor
                         ) -> tuple[int, int]:
    """A transposed conv, counted at its input positions (as fvcore)."""
    x, weight = _arg(args, kwargs, 0, 'input'), _arg(args, kwargs, 1, 'weight')
    return (x.numel() * math.prod(weight.shape[1:]),
            x.numel() // weight.shape[0])


def _linear_cost(args: tuple, kwargs: dict, output: torch.Tensor
                 ) -> tuple[int, int]:
    x, weight = _arg(args, kwargs, 0, 'input'), _arg(args, kwargs, 1, 'weight')
    return x.numel() * weight.shape[0], x.numel() // x.shape[-1]


def _addmm_cost(args: tuple, kwargs: dict, output: torch.Tensor
                ) -> tuple[int, int]:
    mat1, mat2 = _arg(args, kwargs, 1, 'mat1'), _arg(args, kwargs, 2, 'mat2')
    return mat1.numel() * mat2.shape[-1], mat1.shape[0]


def _matmul_cost(args: tuple, kwargs: dict, output: torch.Tensor
                 ) -> tuple[int, int]:
    a, b = _arg(args, kwargs, 0, 'input'), _arg(args, kwargs, 1, 'other')
    columns = b.shape[-1] if b.dim() > 1 else 1
    return a.numel() * columns, a.numel() // a.shape[-1]


# The torch functions behind fvcore's 'conv', 'linear', 'addmm' and 'matmul'
# counts -> (MACs, positions) of one call.
_COUNTED: dict[Callable, Callable] = {
    **dict.fromkeys((F.conv1d, F.conv2d, F.conv3d), _conv_cost),
    **dict.fromkeys((F.conv_transpose1d, F.conv_transpose2d,
                     F.conv_transpose3d), _conv_transpose_cost),
    F.linear: _linear_cost,
    **dict.fromkeys((torch.addmm, torch.Tensor.addmm), _addmm_cost),
    **dict.fromkeys((torch.matmul, torch.Tensor.matmul,
                     torch.Tensor.__matmul__), _matmul_cost),
}
# Python-level torch functions whose products fvcore counts under other
# names ('einsum') or not at all: not FLOPs by the convention.
_OTHER_PRODUCTS = {torch.einsum, torch.tensordot}
_aten = torch.ops.aten
_CONV_KERNELS = {_aten.convolution, _aten._convolution}
_PRODUCT_KERNELS = {_aten.mm, _aten.addmm, _aten.bmm, _aten.baddbmm,
                    _aten.addbmm, _aten.mv, _aten.addmv}


class _KernelCounter(TorchDispatchMode):
    """Counts the conv and matrix-product kernels run (below autograd)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = self.products = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.convs += func.overloadpacket in _CONV_KERNELS
        self.products += func.overloadpacket in _PRODUCT_KERNELS
        return func(*args, **(kwargs or {}))


class _ConvLinearCounter(TorchFunctionMode):
    """Charges every conv and linear function of a forward to the innermost
    module running it (see :func:`count_conv_linear`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.names = {module: name for name, module in model.named_modules()}
        self.stack: list[nn.Module] = []
        self.kernels = _KernelCounter()
        self.costs: dict[str, FixedLayer] = {}
        # name -> (autograd node, output index) of its inputs
        self.inputs: dict[str, list] = {}
        self.uncounted: list[str] = []

    def module_name(self) -> str:
        """Name of the innermost module of the model now running."""
        return next((self.names[m] for m in reversed(self.stack)
                     if m in self.names), '')

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        convs, products = self.kernels.convs, self.kernels.products
        result = func(*args, **kwargs)
        if func in _COUNTED:
            self._charge(func, args, kwargs, result)
        elif self.kernels.convs > convs or (
                self.kernels.products > products and inspect.isfunction(func)
                and func not in _OTHER_PRODUCTS):
            where = f'{self.module_name() or "model"}: {func.__name__}'
            if where not in self.uncounted:
                self.uncounted.append(where)
        return result

    def _charge(self, func: Callable, args: tuple, kwargs: dict,
                result: torch.Tensor) -> None:
        macs, positions = _COUNTED[func](args, kwargs, result)
        name = self.module_name()
        cost = self.costs.setdefault(name, FixedLayer(name))
        op = func.__name__.strip('_')  # __matmul__: matmul
        if op not in cost.ops:
            cost.ops.append(op)
        cost.macs += macs
        cost.output_positions += positions
        self.inputs.setdefault(name, []).extend(
            (a.grad_fn, a.output_nr) for a in args
            if torch.is_tensor(a) and a.grad_fn is not None)


@contextmanager
def count_conv_linear(model: nn.Module) -> Iterator[_ConvLinearCounter]:
    """Counts the conv and linear computations of the forwards run inside.

    The functions counted are those of fvcore's 'conv', 'linear', 'addmm'
    and 'matmul' operators, with fvcore's MACs. The counter yielded has
    ``costs`` (module name -> :class:`FixedLayer` of every call the module
    ran itself, layers of ``model`` included) and ``uncounted`` ('module:
    function' of torch functions that ran a conv, or a matrix product, the
    counter could not see, e.g. ``F.multi_head_attention_forward``).

    Args:
        model: names the modules; the forwards may be of any of them.
    """
    counter = _ConvLinearCounter(model)

    def leave_module(module: nn.Module, args, output) -> None:
        counter.stack.pop()

    enter = register_module_forward_pre_hook(
        lambda module, args: counter.stack.append(module))
    leave = register_module_forward_hook(leave_module, always_call=True)
    try:
        with counter.kernels, counter:
            yield counter
    finally:
        enter.remove()
        leave.remove()


def _trace(model: nn.Module, inputs: torch.Tensor) -> _Trace:
    """Runs one forward pass, recording the autograd nodes of every layer.

    Returns:
        The layers' records, the output's autograd node, the shapes, the
        conv and linear computations and the splits of channels.
    """
    records: dict[str, _Record] = {}
    handles = []
    calls = 0

    def make_hook(record: _Record):

        def hook(mod, args, output):
            nonlocal calls
            if not record.calls:
                record.order, calls = calls, calls + 1
                record.input_shape = tuple(args[0].shape[1:])
            channels = LAYER_KINDS[record.kind].channels(output)
            record.output_positions += output.numel() // (
                output.shape[0] * channels)
            record.calls.append(((args[0].grad_fn, args[0].output_nr),
                                 output.grad_fn))

        return hook

    for name, module in model.named_modules():
        kind = _layer_kind(module)
        if kind is not None:
            record = _Record(module, kind, order=-1)
            records[name] = record
            handles.append(module.register_forward_hook(make_hook(record)))
    try:
        with torch.enable_grad(), count_conv_linear(model) as counter, \
                _ShapeRecorder(counter.module_name) as recorder:
            output = forward_logits(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    called = sorted((r.order, name) for name, r in records.items() if r.calls)
    ordered = {name: records[name] for _, name in called}
    return _Trace(ordered, (output.grad_fn, output.output_nr),
                  recorder.shapes, counter, _split_sites(recorder.slices))


def _split_sites(slices: dict) -> dict[tuple, _SplitSite]:
    """The slices and splits along dim 1, by the tensor they split."""
    sites: dict[tuple, _SplitSite] = {}
    for order, (node, module) in enumerate(slices.items()):
        found = _slice_ranges(node)
        if found is None:
            continue
        width, ranges, open_ends = found
        key = node.next_functions[0]
        site = sites.setdefault(key, _SplitSite(
            key, width, module, _op_name(node), order))
        site.ranges[node] = ranges
        site.open_ends |= {r for r, is_open in zip(ranges, open_ends)
                           if is_open}
    return sites


@dataclass
class _Trace:
    """What one forward of the model recorded (:func:`_trace`).

    Attributes:
        records: layer name -> its record, in the forward's order.
        output: (autograd node, output index) of the model's output.
        output_shapes: output shape of every autograd node created by a
            torch function.
        counter: the count of conv and linear computations.
        sites: the splits of channels, by the tensor split.
    """
    records: dict
    output: tuple
    output_shapes: dict
    counter: _ConvLinearCounter
    sites: dict


def forward_logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Calls an mmpretrain model in 'tensor' mode, else a plain forward."""
    if isinstance(model, BaseModel):
        output = model(inputs, mode='tensor')
    else:
        output = model(inputs)
    if isinstance(output, (tuple, list)):
        output = output[-1]
    return output


class LogitsModule(nn.Module):
    """Wraps a classifier (an mmengine model, run in 'tensor' mode, or a
    plain module) so that ``forward(x)`` returns its logits."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return forward_logits(self.classifier, inputs)


def analyze_channels(model: nn.Module,
                     input_shape: tuple[int, int, int] = (3, 224, 224),
                     logger: MMLogger | None = None) -> ChannelAnalysis:
    """Groups the channels of ``model`` that must share one width.

    Where the model splits channels (slices, ``split``, ``chunk``), each
    split's sizes are taken as following the width (even pieces), else as
    constants, else the split input stays fixed: the first of these that a
    forward at reduced widths confirms (every layer then gets the channels
    the analysis expects; see :func:`_confirm_splits`).

    Args:
        model: the model to analyze; it is run in eval mode (once, and
            once more per check of a split at reduced widths) and left
            unchanged.
        input_shape: (C, H, W) of one input sample.
        logger: where to warn about channels kept fixed; the current
            mmengine logger by default.

    Returns:
        The groups, the per-layer view and the reasons for fixed channels.
    """
    logger = logger or MMLogger.get_current_instance()
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else 'cpu'
        inputs = torch.zeros(1, *input_shape, device=device)
        trace = _trace(model, inputs)
        analysis = _confirm_splits(model, inputs, trace, tuple(input_shape))
    finally:
        model.train(was_training)
    for reason in analysis.fixed:
        logger.warning(f'channels kept fixed: {reason}')
    return analysis


def _group(trace: _Trace, input_shape: tuple[int, int, int],
           modes: dict) -> tuple[ChannelAnalysis, dict]:
    """The channel groups of a traced model, its splits taken in
    ``modes`` (site key -> mode; the default elsewhere).

    Returns:
        The analysis, and site key -> (the mode taken, the searchable
        groups whose width the split's pieces follow).
    """
    records, counter = trace.records, trace.counter
    fixed_layers = {name: cost for name, cost in counter.costs.items()
                    if name not in records}

    producers = {out: n for n, r in records.items()
                 if LAYER_KINDS[r.kind].produces for _, out in r.calls}
    transparent = {out: inp for r in records.values() if r.kind == 'dwconv'
                   for inp, out in r.calls}
    norms = {node for r in records.values() if r.kind == 'bn'
             for inp, out in r.calls for node in _layer_nodes(out, inp[0])
             if _op_name(node) in _NORM_OPS}
    producer_widths = {name: _out_channels(r.module)
                       for name, r in records.items()
                       if LAYER_KINDS[r.kind].produces}
    producer_widths[INPUT] = input_shape[0]
    conv_groups = {name: getattr(records[name].module, 'groups', 1)
                   for name in producer_widths if name != INPUT}
    splits: dict[str, tuple[int, ...]] = {}
    for round_ in range(_SPLIT_ROUNDS):
        walker = _GraphWalker(producers, transparent, norms,
                              trace.output_shapes, producer_widths,
                              conv_groups, splits, trace.sites, modes)
        # a shared layer: every call
        layouts = {name: walker.combine([walker.layout(*input_node)
                                         for input_node, _ in record.calls])
                   for name, record in records.items()}
        walker.sources(*trace.output)
        for name in fixed_layers:
            for node in counter.inputs.get(name, []):
                walker.sources(*node)
        if not walker.new_splits or round_ == _SPLIT_ROUNDS - 1:
            break  # (what is left unsplit stays fixed)
        splits = {**splits, **walker.new_splits}
    union = _UnionFind()
    fixed_roots: dict[str, str] = {}
    # layer -> (item, max width) of each input part (one unless it reads
    # a concatenation); an item is a union-find key of the part's group
    input_parts: dict[str, list[tuple[str, int]]] = {}
    multiples: list[tuple[str, int]] = []  # (item, groups of a grouped conv)

    def join(sources: frozenset, bad: frozenset, who: str) -> str:
        members = sorted(sources)
        union.union(members)
        root = union.find(members[0])
        if bad:
            fixed_roots.setdefault(
                root, f'{who}: input passes unsupported op(s) '
                f'{", ".join(sorted(bad))}')
        return members[0]

    for name, record in records.items():
        layout = layouts[name]
        if len(layout) > 1:
            why = _concat_refusal(record, [walker.part_width(part)
                                           for part in layout])
            if why:
                found, bad = walker.sources_of([layout])
                layout = ((found, bad | {why}), )
        input_parts[name] = [
            (join(found or frozenset([INPUT]), bad, name),
             walker.part_width((found, bad)) or 0)
            for found, bad in layout]
        if record.kind == 'conv' and record.module.groups > 1:
            multiples += [(item, record.module.groups) for item in
                          [i for i, _ in input_parts[name]]
                          + output_items(name, splits)]
    multiples += [(sorted(producers)[0], groups)
                  for producers, groups in walker.divisors if producers]
    for tied in walker.ties:  # pieces of an even split
        union.union(sorted(frozenset().union(*tied)))
    for found, why, where in walker.pinned:
        if found:
            join(found, frozenset([why]), where)
    for name, layer in fixed_layers.items():  # its input keeps its width
        for node in counter.inputs.get(name, []):
            found = walker.sources(*node)[0] or frozenset([INPUT])
            fixed_roots.setdefault(union.find(join(found, frozenset(), name)),
                                   f'read by {name} ({", ".join(layer.ops)})')
    out_sources, out_bad = walker.sources(*trace.output)
    union.union(sorted(out_sources) + [OUTPUT])
    if out_bad:
        fixed_roots.setdefault(
            union.find(OUTPUT), 'model output passes unsupported op(s) '
            f'{", ".join(sorted(out_bad))}')
    fixed_roots.setdefault(union.find(OUTPUT), 'feeds the model output')
    fixed_roots.setdefault(union.find(INPUT), 'model input')

    # Re-resolve roots after all unions; a root may have been merged later.
    fixed = {union.find(r): why for r, why in fixed_roots.items()}
    widths: dict[str, set] = {}
    for name, record in records.items():
        if LAYER_KINDS[record.kind].produces:
            for item in output_items(name, splits):
                widths.setdefault(union.find(item), set()).add(
                    walker.widths[item])
    for root, values in widths.items():
        if len(values) > 1:
            fixed.setdefault(root, f'producers disagree on width {values}')

    groups: dict[str, ChannelGroup] = {}
    root_to_group: dict[str, str] = {}
    layers: dict[str, LayerInfo] = {}

    def group_of(item: str) -> str | None:
        root = union.find(item)
        if root in fixed:
            return None
        if root not in root_to_group:
            # a part of a producer's output: the producer's name if free
            name = item.rpartition('#')[0] or item
            name = item if name in groups else name
            root_to_group[root] = name
            divisor = math.lcm(1, *(g for i, g in multiples
                                    if union.find(i) == root))
            groups[name] = ChannelGroup(name, widths[root].pop(), divisor)
        return root_to_group[root]

    for name, record in records.items():
        module = record.module
        parts = [(group_of(item), width) for item, width in input_parts[name]]
        in_group = parts[0][0] if len(parts) == 1 else None
        out_parts = None
        if LAYER_KINDS[record.kind].produces:
            outputs = [(group_of(item), walker.widths[item])
                       for item in output_items(name, splits)]
            out_group = outputs[0][0] if len(outputs) == 1 else None
            out_parts = tuple(outputs) if len(outputs) > 1 \
                and any(g for g, _ in outputs) else None
            for group in dict.fromkeys(g for g, _ in outputs):
                if group is not None:
                    groups[group].producers.append(name)
        else:
            outputs, out_group = [], in_group
        for group in dict.fromkeys([g for g, _ in parts + outputs]
                                   + [out_group]):
            if group is not None:
                groups[group].members.append(name)
        layers[name] = LayerInfo(
            name, record.kind, in_group, out_group, _in_channels(module),
            _out_channels(module), record.output_positions,
            tuple(parts) if len(parts) > 1 and any(g for g, _ in parts)
            else None, out_parts, record.input_shape)

    reasons = _describe_fixed(records, union, fixed, input_parts, splits)
    reasons += [f'{name or "model"}: {", ".join(layer.ops)} outside the '
                'sliceable layers (its FLOPs count as a constant)'
                for name, layer in fixed_layers.items()]
    site_groups = {key: (mode, {group_of(item) for item in items} - {None})
                   for key, (mode, items) in walker.site_items.items()}
    splits_taken = {trace.sites[key].describe(): mode
                    for key, (mode, _) in sorted(
                        walker.site_items.items(),
                        key=lambda item: trace.sites[item[0]].order)}
    return ChannelAnalysis(groups, layers, reasons, tuple(input_shape),
                           fixed_layers, counter.uncounted,
                           splits_taken), site_groups


def _confirm_splits(model: nn.Module, inputs: torch.Tensor, trace: _Trace,
                    input_shape: tuple[int, int, int]) -> ChannelAnalysis:
    """The analysis with every split in the first mode (of
    :data:`SPLIT_MODES`) that a forward at reduced widths confirms.

    One trace at full width cannot tell a split whose sizes follow the
    width (``x.shape[1] // 2``) from one of constant sizes
    (``torch.split(x, 14, 1)``). The analysis takes each in its first
    mode, then runs the model with the groups the splits' pieces carry one
    step narrower (:func:`_probe`): where a layer then gets other channels
    than the analysis expects, the sites are checked one by one in the
    forward's order, and the first failing one moves to its next mode,
    with the sites of the same code (:meth:`_SplitSite.signature`) not
    confirmed alone in their mode; if none fails alone, every site moves
    on. A site in mode 'fixed' changes no width, so this ends.
    """
    modes: dict[tuple, str] = {}
    confirmed: dict[tuple, str] = {}  # site -> mode it passed alone in
    while True:
        analysis, sites = _group(trace, input_shape, modes)
        probed = {key: groups for key, (_, groups) in sites.items() if groups}
        if not probed or _probe(model, inputs, analysis, set().union(
                *probed.values())) is None:
            return analysis
        order = sorted(probed, key=lambda key: trace.sites[key].order)
        failing = None
        for key in order:
            mode = sites[key][0]
            if confirmed.get(key) == mode:
                continue
            if _probe(model, inputs, analysis, probed[key]) is None:
                confirmed[key] = mode
                continue
            failing = key
            break
        if failing is None:
            moved = order
        else:
            signature = trace.sites[failing].signature()
            moved = [key for key in order
                     if trace.sites[key].signature() == signature
                     and confirmed.get(key) != sites[key][0]]
        for key in moved:
            modes[key] = SPLIT_MODES[SPLIT_MODES.index(sites[key][0]) + 1]


class _ProbeMismatch(Exception):
    """A layer got other channels than the analysis expects."""


def _in_use(layout: tuple[tuple[str | None, int], ...], widths: Mapping
            ) -> torch.Tensor:
    """Indices of the channels in use of a layer's parts at ``widths``."""
    return parts_in_use([widths.get(group, width) if group else width
                         for group, width in layout],
                        [width for _, width in layout])


def _probe(model: nn.Module, inputs: torch.Tensor,
           analysis: ChannelAnalysis, groups: set[str]) -> str | None:
    """Runs the model with ``groups`` one step narrower (their max width
    less their divisor) and every layer emulating its dynamic version: it
    takes the channels the analysis expects (else the forward stops),
    places them at their channels of the full layer and keeps the output
    channels in use. Returns None if the forward runs so, else what
    failed."""
    widths = {name: group.max_width - group.divisor
              for name, group in analysis.groups.items()
              if name in groups and group.max_width > group.divisor}
    if not widths:
        return None
    handles = []

    def expand(name: str, dim: int, index: torch.Tensor, full: int):

        def hook(module, args):
            x = args[0]
            if x.shape[dim] != len(index):
                raise _ProbeMismatch(
                    f'{name} got {x.shape[dim]} input channels, the '
                    f'analysis expects {len(index)}')
            shape = list(x.shape)
            shape[dim] = full
            return (x.new_zeros(shape).index_copy(dim, index.to(x.device), x),
                    *args[1:])

        return hook

    def keep(dim: int, index: torch.Tensor):
        return lambda module, args, output: output.index_select(
            dim, index.to(output.device))

    for name, info in analysis.layers.items():
        module = model.get_submodule(name)
        kind = LAYER_KINDS[info.kind]
        dim = -1 if kind.channels_last else 1
        index = _in_use(info.input_layout(), widths)
        out = _in_use(info.output_layout(), widths) if kind.produces \
            else index
        handles += [module.register_forward_pre_hook(
                        expand(name, dim, index, info.in_channels)),
                    module.register_forward_hook(keep(dim, out))]
    try:
        with torch.no_grad():
            forward_logits(model, inputs)
    except _ProbeMismatch as error:
        return str(error)
    except Exception as error:  # the model's code refused the widths
        return f'{type(error).__name__}: {error}'
    finally:
        for handle in handles:
            handle.remove()
    return None


def _concat_refusal(record: _Record, widths: list[int | None]
                    ) -> str | None:
    """Why a layer cannot read a concatenation part by part (None: it
    can): the parts' widths must add up to the layer's input channels, and
    a grouped conv (which reads the first inputs of each conv group) needs
    every part in multiples of its groups."""
    module = record.module
    if None in widths or sum(widths) != _in_channels(module):
        return 'a concatenation of parts of unknown width'
    if record.kind == 'conv' and module.groups > 1 \
            and not _is_depthwise(module) \
            and any(w % module.groups for w in widths):
        return ('a concatenation read by a grouped conv in parts that are '
                'not multiples of its groups')
    return None


def refuse_channel_parts(analysis: ChannelAnalysis, what: str, fix: str,
                         groups: Iterable[str] | None = None) -> None:
    """Raises a :class:`~mmchansearch.errors.ConfigError` naming the layers
    that read or write a concatenation with a searchable part (of
    ``groups``, if given): ``what`` cannot handle them yet and would take
    their channels as one group or fixed; ``fix`` says what to do instead.
    """
    wanted = None if groups is None else set(groups)
    layers = [name for name, info in analysis.layers.items()
              if (info.in_parts or info.out_parts) and any(
                  wanted is None or g in wanted
                  for g in info.input_groups() + info.output_groups())]
    if layers:
        shown = ', '.join(layers[:5]) + (
            f' and {len(layers) - 5} more' if len(layers) > 5 else '')
        raise ConfigError(
            f'{what} does not support layers reading or writing a '
            f'concatenation of searchable groups yet ({shown}); {fix}.')


def _describe_fixed(records: dict, union: _UnionFind, fixed: dict,
                    input_parts: dict, splits: dict) -> list[str]:
    """One line per fixed set of channels, skipping the expected ones."""
    touched: dict[str, list[str]] = {}
    for name, record in records.items():
        items = [item for item, _ in input_parts[name]]
        if LAYER_KINDS[record.kind].produces:
            items += output_items(name, splits)
        for item in items:
            if union.find(item) in fixed:
                touched.setdefault(union.find(item), []).append(name)
    lines = []
    for root, why in fixed.items():
        if why in ('model input', 'feeds the model output'):
            continue
        names = sorted(set(touched.get(root, [])))
        lines.append(f'{why} (modules: {", ".join(names) or "none"})')
    return lines


def _in_channels(module: nn.Module) -> int:
    if isinstance(module, nn.Conv2d):
        return module.in_channels
    if isinstance(module, nn.Linear):
        return module.in_features
    return module.num_features


def _out_channels(module: nn.Module) -> int:
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    return module.num_features
