"""Rank of features: the layer study behind ReXNet's channel rule.

Han et al. (CVPR 2021, arXiv:2007.00992, Sec. 3) measure how much of its
output space a layer can reach: the rank of the output features
``f(WX)`` over the number of output channels ``d_out``, ``f`` being BN and
the nonlinearity after the conv, an inverted bottleneck measured after its
shortcut add. A linear layer
with ``d_in < d_out`` inputs cannot exceed ``d_in / d_out``; a
nonlinearity lifts that bound, the more the larger ``d_in / d_out``.

Vocabulary:
    feature matrix: a layer's output as rows of samples (batch and spatial
        positions) by columns of channels.
    spectrum: the singular values of a feature matrix, largest first.
    numerical rank: singular values above ``rtol`` times the largest.

:func:`layer_rank_ratio` measures one random layer, :func:`rank_ratio_sweep`
averages many over input/output ratios and nonlinearities (the paper's
Fig. 1), and :func:`feature_spectra` measures a trained model's features,
collected batch by batch by :class:`GramAccumulator`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from mmengine.model import BaseModel
from torch import nn

# Nonlinearities of the study, by torch.nn class name.
ACTIVATIONS = ('Identity', 'ReLU', 'ReLU6', 'LeakyReLU', 'ELU', 'Softplus',
               'Hardswish', 'SiLU')
# Module types of the nonlinearities, for :func:`feature_spectra`.
ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.Softplus,
                    nn.Hardswish, nn.SiLU, nn.GELU, nn.Hardtanh, nn.Mish)
# Single layers of the study, each conv followed by BN and the
# nonlinearity (the paper's f):
#   conv1x1, conv3x3: one conv;
#   ib_conv, ib_dwconv: inverted bottleneck (1x1 expansion, 3x3 full or
#   depthwise conv, 1x1 projection), measured after its shortcut add (the
#   input added to the first d_in output channels).
KINDS = ('conv1x1', 'conv3x3', 'ib_conv', 'ib_dwconv')
BOTTLENECK_KINDS = ('ib_conv', 'ib_dwconv')


def feature_matrix(features: torch.Tensor) -> torch.Tensor:
    """Rows of samples by columns of channels, in float64.

    Args:
        features: (N, C) or (N, C, H, W); spatial positions become rows.

    Returns:
        A (rows, C) matrix.
    """
    if features.dim() == 4:
        features = features.permute(0, 2, 3, 1).flatten(0, 2)
    elif features.dim() != 2:
        raise ValueError(f'features: expected 2 or 4 dims, got shape '
                         f'{tuple(features.shape)}')
    return features.detach().to(torch.float64)


def default_rtol(rows: int, cols: int,
                 dtype: torch.dtype = torch.float32) -> float:
    """The usual numerical-rank tolerance, relative to the largest value:
    ``max(rows, cols)`` times the machine epsilon of ``dtype``.

    Args:
        rows: rows of the feature matrix.
        cols: columns of the feature matrix.
        dtype: precision the features were computed in.

    Returns:
        The relative tolerance.
    """
    return max(rows, cols) * torch.finfo(dtype).eps


@dataclass
class Spectrum:
    """Singular values of a (rows, cols) feature matrix.

    Attributes:
        values: singular values, largest first (``min(rows, cols)`` of
            them).
        rows: rows of the matrix.
        cols: columns (channels) of the matrix.
        dtype: precision the features were computed in; sets the default
            tolerance of :meth:`rank`.
    """
    values: torch.Tensor
    rows: int
    cols: int
    dtype: torch.dtype = torch.float32

    @property
    def max_rank(self) -> int:
        """The rank of a full-rank matrix of this shape."""
        return min(self.rows, self.cols)

    def rank(self, rtol: float | None = None) -> int:
        """Singular values above ``rtol`` times the largest.

        Args:
            rtol: relative tolerance; :func:`default_rtol` when None.

        Returns:
            The numerical rank (0 for an all-zero matrix).
        """
        if rtol is None:
            rtol = default_rtol(self.rows, self.cols, self.dtype)
        top = float(self.values.max()) if self.values.numel() else 0.0
        if top == 0.0:
            return 0
        return int((self.values > rtol * top).sum())

    def nuclear_norm(self, normalize: bool = True) -> float:
        """Sum of the singular values.

        Args:
            normalize: divide by the largest singular value, so that a
                matrix of k equal singular values scores k, whatever its
                scale.

        Returns:
            The (normalized) nuclear norm; 0 for an all-zero matrix.
        """
        total = float(self.values.sum())
        top = float(self.values.max()) if self.values.numel() else 0.0
        if not normalize:
            return total
        return total / top if top > 0 else 0.0

    def cumulative(self) -> torch.Tensor:
        """Cumulative share of the singular values, largest first.

        Returns:
            ``min(rows, cols)`` values rising to 1; a flatter spectrum
            (higher rank) gives a curve closer to the diagonal.
        """
        total = self.values.sum()
        if total == 0:
            return torch.zeros_like(self.values)
        return self.values.cumsum(0) / total


def spectrum(features: torch.Tensor) -> Spectrum:
    """The :class:`Spectrum` of a feature tensor (see
    :func:`feature_matrix`).

    Args:
        features: (N, C) or (N, C, H, W) features.

    Returns:
        Its singular values and shape.
    """
    matrix = feature_matrix(features)
    return Spectrum(torch.linalg.svdvals(matrix), *matrix.shape,
                    dtype=features.dtype if features.is_floating_point()
                    else torch.float32)


def numerical_rank(features: torch.Tensor,
                   rtol: float | None = None) -> int:
    """Numerical rank of a feature matrix.

    Args:
        features: (N, C) or (N, C, H, W) features.
        rtol: tolerance relative to the largest singular value;
            :func:`default_rtol` when None.

    Returns:
        The number of singular values above the tolerance.
    """
    return spectrum(features).rank(rtol)


def nuclear_norm(features: torch.Tensor, normalize: bool = True) -> float:
    """Nuclear norm of a feature matrix (see :meth:`Spectrum.nuclear_norm`).

    Args:
        features: (N, C) or (N, C, H, W) features.
        normalize: divide by the largest singular value.

    Returns:
        The (normalized) nuclear norm.
    """
    return spectrum(features).nuclear_norm(normalize)


def cumulative_singular_values(features: torch.Tensor) -> torch.Tensor:
    """Cumulative share of the singular values of a feature matrix.

    Args:
        features: (N, C) or (N, C, H, W) features.

    Returns:
        ``min(rows, C)`` values rising to 1.
    """
    return spectrum(features).cumulative()


class GramAccumulator:
    """Streams a layer's features to their spectrum without storing them.

    Sums ``F^T F`` in float64 over batches; the singular values of ``F``
    are the square roots of its eigenvalues, accurate to about 1e-8 of
    the largest (float64 Gram), well within :func:`default_rtol` of float32
    features. Memory is C x C per layer whatever the number of images.
    """

    def __init__(self) -> None:
        self.gram: torch.Tensor | None = None
        self.rows = 0
        self.dtype = torch.float32

    def update(self, features: torch.Tensor) -> None:
        """Adds a batch of (N, C) or (N, C, H, W) features."""
        matrix = feature_matrix(features)
        gram = matrix.T @ matrix
        self.gram = gram if self.gram is None else self.gram + gram
        self.rows += matrix.shape[0]
        self.dtype = features.dtype

    def spectrum(self) -> Spectrum:
        """The spectrum of every feature added so far."""
        if self.gram is None:
            raise ValueError('no features were added')
        eigenvalues = torch.linalg.eigvalsh(self.gram).flip(0)
        cols = self.gram.shape[0]
        values = eigenvalues.clamp(min=0).sqrt()[:min(self.rows, cols)]
        return Spectrum(values, self.rows, cols, self.dtype)


def feature_spectra(model: nn.Module, batches: Iterable[torch.Tensor],
                    module_types: tuple[type, ...] = (nn.Conv2d, )
                    ) -> dict[str, Spectrum]:
    """Spectrum of the output of every module of some types over batches.

    Args:
        model: an mmengine model (run with ``mode='tensor'``) or a plain
            module, in the mode it should be measured in (usually eval).
        batches: preprocessed input batches.
        module_types: modules whose outputs are measured: conv layers by
            default, :data:`ACTIVATION_TYPES` for the features after the
            nonlinearities.

    Returns:
        Module name -> spectrum of its output, in execution order.
    """
    accumulators: dict[str, GramAccumulator] = {}

    def hook(name: str) -> Callable:
        def record(module, inputs, output) -> None:
            accumulators.setdefault(name, GramAccumulator()).update(output)
        return record

    handles = [module.register_forward_hook(hook(name))
               for name, module in model.named_modules()
               if isinstance(module, module_types)]
    try:
        with torch.no_grad():
            for inputs in batches:
                if isinstance(model, BaseModel):
                    model(inputs, mode='tensor')
                else:
                    model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {name: acc.spectrum() for name, acc in accumulators.items()}


# ------------------------------------------------------------ layer study
def make_activation(name: str) -> nn.Module:
    """A nonlinearity of the study by torch.nn class name.

    Args:
        name: one of :data:`ACTIVATIONS`.

    Returns:
        The module.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f'activation {name!r}: expected one of '
                         f'{", ".join(ACTIVATIONS)}')
    return getattr(nn, name)()


class ShortcutBlock(nn.Module):
    """A body whose input is added to the first channels of its output
    (ReXNet's partial residual; the plain residual when the widths are
    equal).

    Args:
        body: the layers; they must not narrow the input.
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        c = x.shape[1]
        if c > out.shape[1]:
            raise ValueError(f'shortcut: {c} input channels do not fit '
                             f'{out.shape[1]} output channels')
        if c == out.shape[1]:
            return out + x
        return torch.cat([out[:, :c] + x, out[:, c:]], dim=1)


def make_layer(kind: str, d_in: int, d_out: int, activation: str,
               expand_ratio: int = 6, batch_norm: bool = True,
               shortcut: bool = True) -> nn.Module:
    """One layer of the study: every conv followed by BN (batch
    statistics, unit weight, zero bias) and the nonlinearity.

    Args:
        kind: one of :data:`KINDS`.
        d_in: input channels.
        d_out: output channels.
        activation: one of :data:`ACTIVATIONS`.
        expand_ratio: hidden channels over ``d_in`` in inverted
            bottlenecks.
        batch_norm: BN after every conv (False: the conv feeds the
            nonlinearity directly).
        shortcut: an inverted bottleneck adds its input to the first
            ``d_in`` output channels (needs ``d_in <= d_out``); ignored by
            single convs.

    Returns:
        The layer, with torch's default initialization.
    """
    if kind == 'conv1x1':
        convs = [nn.Conv2d(d_in, d_out, 1, bias=False)]
    elif kind == 'conv3x3':
        convs = [nn.Conv2d(d_in, d_out, 3, padding=1, bias=False)]
    elif kind in ('ib_conv', 'ib_dwconv'):
        hidden = d_in * expand_ratio
        groups = hidden if kind == 'ib_dwconv' else 1
        convs = [nn.Conv2d(d_in, hidden, 1, bias=False),
                 nn.Conv2d(hidden, hidden, 3, padding=1, groups=groups,
                           bias=False),
                 nn.Conv2d(hidden, d_out, 1, bias=False)]
    else:
        raise ValueError(f'layer kind {kind!r}: expected one of '
                         f'{", ".join(KINDS)}')
    layers = []
    for conv in convs:
        layers.append(conv)
        if batch_norm:
            # batch statistics also in eval mode: the layer normalizes
            # the batch it is measured on, as in training
            layers.append(nn.BatchNorm2d(conv.out_channels,
                                         track_running_stats=False))
        layers.append(make_activation(activation))
    body = nn.Sequential(*layers)
    if shortcut and kind in BOTTLENECK_KINDS:
        if d_in > d_out:
            raise ValueError(f'{kind} with a shortcut needs d_in <= d_out, '
                             f'got {d_in} > {d_out}; pass shortcut=False')
        return ShortcutBlock(body)
    return body


def _init_normal(layer: nn.Module, generator: torch.Generator) -> None:
    """He-normal weights drawn from ``generator``: unit-scale outputs."""
    with torch.no_grad():
        for module in layer.modules():
            if isinstance(module, nn.Conv2d):
                weight = module.weight
                fan_in = weight[0].numel()
                weight.copy_(torch.randn(weight.shape, generator=generator)
                             * math.sqrt(2.0 / fan_in))


def layer_rank_ratio(kind: str, d_in: int, d_out: int, activation: str,
                     generator: torch.Generator | None = None,
                     size: int = 8, rows_per_channel: int = 4,
                     rtol: float | None = None,
                     expand_ratio: int = 6, batch_norm: bool = True,
                     shortcut: bool = True) -> float:
    """``rank(f(WX)) / d_out`` of one random layer on random input.

    Args:
        kind: one of :data:`KINDS`.
        d_in: input channels.
        d_out: output channels.
        activation: one of :data:`ACTIVATIONS`.
        generator: source of the weights and the input (a fresh one with
            seed 0 when None).
        size: height and width of the input.
        rows_per_channel: the batch holds at least this many positions
            (rows of the feature matrix) per output channel, so that rows
            never limit the rank.
        rtol: rank tolerance relative to the largest singular value;
            :func:`default_rtol` when None.
        expand_ratio: hidden channels over ``d_in`` in inverted
            bottlenecks.
        batch_norm: BN after every conv (see :func:`make_layer`).
        shortcut: inverted bottlenecks measured after their shortcut add.

    Returns:
        The rank ratio, in [0, 1].
    """
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    layer = make_layer(kind, d_in, d_out, activation, expand_ratio,
                       batch_norm, shortcut).eval()
    _init_normal(layer, generator)
    batch = math.ceil(rows_per_channel * d_out / (size * size))
    inputs = torch.randn(batch, d_in, size, size, generator=generator)
    with torch.no_grad():
        outputs = layer(inputs)
    return spectrum(outputs).rank(rtol) / d_out


def rank_ratio_sweep(kinds: Sequence[str] = KINDS,
                     activations: Sequence[str] = ACTIVATIONS,
                     ratios: Sequence[float] = tuple(
                         i / 10 for i in range(1, 11)),
                     num_layers: int = 10,
                     d_out_range: tuple[int, int] = (32, 96),
                     seed: int = 0,
                     rtol: float | None = None,
                     progress: Callable[[], None] | None = None,
                     batch_norm: bool = True,
                     shortcut: bool = True) -> list[dict]:
    """Average rank ratio of random layers per kind, nonlinearity and
    input/output ratio (the paper's Fig. 1).

    Each of the ``num_layers`` layers of a cell draws ``d_out`` uniformly
    from ``d_out_range`` and takes ``d_in = round(ratio * d_out)``; the
    same sizes are used for every nonlinearity.

    Args:
        kinds: layer kinds, of :data:`KINDS`.
        activations: nonlinearities, of :data:`ACTIVATIONS`.
        ratios: values of ``d_in / d_out``, in (0, 1].
        num_layers: random layers per cell.
        d_out_range: inclusive range of ``d_out``.
        seed: seeds the sizes, weights and inputs.
        rtol: rank tolerance (see :func:`layer_rank_ratio`).
        progress: called after each (kind, activation, ratio) cell.
        batch_norm: BN after every conv (see :func:`make_layer`).
        shortcut: inverted bottlenecks measured after their shortcut add.

    Returns:
        One row per (kind, activation, ratio): ``kind``, ``activation``,
        ``ratio``, ``rank_ratio`` (mean), ``std`` and ``num_layers``.
    """
    low, high = d_out_range
    if not 1 <= low <= high:
        raise ValueError(f'd_out_range: expected 1 <= low <= high, got '
                         f'{d_out_range}')
    for ratio in ratios:
        if not 0 < ratio <= 1:
            raise ValueError(f'ratio {ratio}: expected a value in (0, 1]')
    sizes = torch.Generator().manual_seed(seed)
    rows = []
    for kind in kinds:
        for ratio in ratios:
            d_outs = torch.randint(low, high + 1, (num_layers, ),
                                   generator=sizes).tolist()
            for activation in activations:
                generator = torch.Generator().manual_seed(seed)
                values = []
                for d_out in d_outs:
                    d_in = max(1, round(ratio * d_out))
                    values.append(layer_rank_ratio(
                        kind, d_in, d_out, activation, generator,
                        rtol=rtol, batch_norm=batch_norm,
                        shortcut=shortcut))
                mean = sum(values) / len(values)
                std = math.sqrt(sum((v - mean) ** 2 for v in values)
                                / len(values))
                rows.append(dict(kind=kind, activation=activation,
                                 ratio=ratio, rank_ratio=mean, std=std,
                                 num_layers=len(values)))
                if progress is not None:
                    progress()
    return rows
