"""Input-resolution search by spatially interleaved zero padding (FBNetV2).

A candidate resolution r of an H x W input keeps the pixels of an evenly
spread grid of r rows and r columns (:func:`grid`); :func:`subsample` picks
them, which gives the r x r image the derived network trains and tests on.

In the supernet every layer keeps its full-resolution size (its "canvas");
a candidate's feature map lies on the canvas at the grid positions of its
own, smaller size, with zeros between (interleaved zero padding,
:func:`interleave`). :class:`ResolutionMixer` runs every spatial layer once
per candidate: it sub-samples the canvas at the candidate's grid, runs the
layer on that dense map and interleaves the result into the output canvas
(sub-sample before, pad after). Pixels thus stay aligned with the input and
the receptive field is the r-resolution network's, not shrunk as it would
be by zero padding around a smaller image. A layer's output is the sum of
the candidates' canvases weighted by the Gumbel weights; with a one-hot
weight the network is exactly the r-resolution network.
"""
from __future__ import annotations

import types
from collections.abc import Sequence

import torch
from torch import nn

from .analysis import FixedLayer, count_conv_linear
from .errors import ConfigError

# Pointwise modules that map 0 to 0: canvases pass through them unchanged.
ZERO_PRESERVING = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU,
                   nn.LeakyReLU, nn.Identity, nn.Dropout)

Size = tuple[int, int]


def grid(size: int, full: int) -> torch.Tensor:
    """The ``size`` of ``full`` positions a sub-sampled axis keeps: the
    nearest to the centres of ``size`` equal cells (all of them when
    ``size == full``)."""
    return ((torch.arange(size) * 2 + 1) * full) // (2 * size)


def subsample(x: torch.Tensor, size: Size) -> torch.Tensor:
    """The pixels of ``x`` (N, C, H, W) on the grid of ``size`` (h, w)."""
    full = x.shape[-2:]
    if tuple(size) == tuple(full):
        return x
    rows = grid(size[0], full[0]).to(x.device)
    cols = grid(size[1], full[1]).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def interleave(x: torch.Tensor, full: Size) -> torch.Tensor:
    """``x`` (N, C, h, w) placed on a ``full``-sized canvas at the grid
    positions of its size, zeros between."""
    size = x.shape[-2:]
    if tuple(size) == tuple(full):
        return x
    rows = grid(size[0], full[0]).to(x.device)
    cols = grid(size[1], full[1]).to(x.device)
    canvas = x.new_zeros(*x.shape[:-2], full[0], x.shape[-1])
    canvas = canvas.index_copy(-2, rows, x)
    out = x.new_zeros(*x.shape[:-2], *full)
    return out.index_copy(-1, cols, canvas)


def check_resolutions(resolutions: Sequence[int], input_shape: Sequence[int]
                      ) -> list[int]:
    """``resolutions`` sorted, after checking them against the input.

    Raises:
        ConfigError: an empty list, a non-integer, or a resolution above
            the input size or the input not square.
    """
    _, height, width = input_shape
    if not (isinstance(resolutions, (list, tuple)) and resolutions):
        raise ConfigError(f'resolutions must be a non-empty list of input '
                          f'sizes <= {height}, got {resolutions!r}.')
    if height != width:
        raise ConfigError(f'resolution search needs a square input; the '
                          f'mutator input_shape is {list(input_shape)}.')
    for value in resolutions:
        if not (isinstance(value, int) and not isinstance(value, bool)
                and 1 <= value <= height):
            raise ConfigError(
                f'resolutions: {value!r} is not an input size in [1, '
                f'{height}] (the training input is {height}x{width}; '
                'candidates can only sub-sample it).')
    return sorted(set(resolutions))


def trace_sizes(model: nn.Module, input_shape: Sequence[int]
                ) -> tuple[dict[str, list[tuple]], dict[str, FixedLayer]]:
    """Runs ``model`` once (eval mode, no gradients) on zeros of
    ``input_shape``.

    Returns:
        Per leaf module, the (input size or None, output size or None,
        output positions per channel) of each of its calls; per module
        running a conv or linear function itself, their cost
        (:func:`~mmchansearch.analysis.count_conv_linear`).
    """
    records: dict[str, list[tuple]] = {}
    handles = []

    def make_hook(name: str, module: nn.Module):
        def hook(_, args, output):
            if not (args and torch.is_tensor(args[0])):
                return
            channels = output.shape[-1 if isinstance(module, nn.Linear)
                                    else 1]
            positions = output.numel() // (output.shape[0] * channels)
            in_size = tuple(args[0].shape[-2:]) if args[0].dim() == 4 \
                else None
            out_size = tuple(output.shape[-2:]) if output.dim() == 4 \
                else None
            records.setdefault(name, []).append((in_size, out_size,
                                                 positions))
        return hook

    for name, module in model.named_modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(
                make_hook(name, module)))
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else 'cpu'
    try:
        model.eval()
        with torch.no_grad(), count_conv_linear(model) as counter:
            model(torch.zeros(1, *input_shape, device=device), mode='tensor')
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return records, counter.costs


def _positions(trace: dict[str, list[tuple]], costs: dict[str, FixedLayer],
               full_costs: dict[str, FixedLayer], resolution: int
               ) -> dict[str, int]:
    """Output positions per leaf module, and the positions the conv and
    linear functions of a module are counted at (what the FLOPs of a fixed
    layer scale with).

    Raises:
        ConfigError: a module's cost does not scale with its positions
            (e.g. a matrix product over the positions themselves).
    """
    positions = {name: sum(call[2] for call in calls)
                 for name, calls in trace.items()}
    for name in full_costs.keys() | costs.keys():
        full = full_costs.get(name, FixedLayer(name))
        cost = costs.get(name, FixedLayer(name))
        if cost.macs * full.output_positions != \
                full.macs * cost.output_positions:
            raise ConfigError(
                f'resolutions: the FLOPs of {name or "the model"} '
                f'({", ".join(full.ops or cost.ops)}) at {resolution}x'
                f'{resolution} do not scale with its output positions, so '
                'the resolution search cannot estimate them; search the '
                'channels alone.')
        positions[name] = cost.output_positions
    return positions


class ResolutionMixer:
    """Runs a classifier at several input resolutions at once, weighted.

    Set :attr:`weights` (one per resolution, e.g. Gumbel-softmax weights)
    before a forward on full-size inputs; with None the model runs as
    usual. Candidates whose weight is exactly 0 and needs no gradient are
    skipped, so a fixed one-hot weight costs one r-resolution forward.

    Every leaf module that reads a 4-D map (but the zero-preserving
    activations) gets an instance ``forward`` that does the sub-sample /
    run / interleave per candidate; :meth:`remove` restores them. A batch
    norm in training mode therefore normalizes each candidate with its own
    batch statistics, and updates its running statistics once per
    candidate. :attr:`positions` holds, per candidate, every leaf module's
    output positions per channel (summed over its calls) and the positions
    of every module's own conv and linear functions (fixed layers
    included), what the FLOPs of that resolution scale with.

    Args:
        model: the classifier (called as ``model(x, mode='tensor')``).
        input_shape: (C, H, W) of the full-size inputs.
        resolutions: candidate sizes (see :func:`check_resolutions`).
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int],
                 resolutions: Sequence[int]) -> None:
        self.resolutions = check_resolutions(resolutions, input_shape)
        self.weights: torch.Tensor | None = None
        channels = input_shape[0]
        full, full_costs = trace_sizes(model, input_shape)
        traces = [trace_sizes(model, (channels, r, r))
                  for r in self.resolutions]
        per_candidate = [trace for trace, _ in traces]
        self.positions = [
            _positions(trace, costs, full_costs, r)
            for (trace, costs), r in zip(traces, self.resolutions)]
        self._plans: dict[str, dict[Size, tuple]] = {}
        self._wrapped: list[nn.Module] = []
        for name, calls in full.items():
            module = model.get_submodule(name)
            if isinstance(module, ZERO_PRESERVING) or calls[0][0] is None:
                continue
            self._plans[name] = {
                call[0]: (call[1], [trace[name][i][0]
                                    for trace in per_candidate])
                for i, call in enumerate(calls)}
            module.forward = types.MethodType(self._forward(name), module)
            self._wrapped.append(module)

    def _forward(self, name: str):
        mixer = self

        def forward(module: nn.Module, x: torch.Tensor, *args, **kwargs):
            plain = type(module).forward
            weights = mixer.weights
            if weights is None or x.dim() != 4:
                return plain(module, x, *args, **kwargs)
            out_full, sizes = mixer._plans[name][tuple(x.shape[-2:])]
            out = 0
            for weight, in_size in zip(weights, sizes):
                if not weight.requires_grad and float(weight) == 0:
                    continue
                y = plain(module, subsample(x, in_size), *args, **kwargs)
                if out_full is not None:
                    y = interleave(y, out_full)
                out = out + weight.to(y) * y
            return out

        return forward

    def one_hot(self, resolution: int) -> torch.Tensor:
        """The weights that select ``resolution`` alone."""
        weights = torch.zeros(len(self.resolutions))
        weights[self.resolutions.index(resolution)] = 1
        return weights

    def remove(self) -> None:
        """Restores the modules' own forward."""
        for module in self._wrapped:
            del module.forward
        self._wrapped = []
