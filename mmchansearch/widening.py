"""Rebuilding a model's layers at other channel widths.

Search methods that may *grow* layers (Network Adjustment widens layers past
their original width) need a supernet wider than the model. The analyzed
layers are resized in place to the new group widths with freshly initialized
weights; everything else in the model is untouched, so its forward runs
unchanged at the new widths.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from .analysis import ChannelAnalysis, refuse_channel_parts
from .layer_kinds import LAYER_KINDS


def resize_layers(model: nn.Module, analysis: ChannelAnalysis,
                  widths: Mapping[str, int]) -> None:
    """Resizes every analyzed layer of ``model`` to ``widths``, in place.

    Resized layers get new, freshly initialized weights (the layer's own
    ``reset_parameters``; a Runner applies the model's ``init_cfg`` on top
    when it initializes the model). Layers whose groups keep their width are
    left as they are.

    Args:
        model: the analyzed model.
        analysis: its channel analysis.
        widths: group name -> new width (missing groups keep theirs).
    """
    refuse_channel_parts(
        analysis, 'resizing layers (Network Adjustment, width_cap > 1)',
        'search this model with AutoSlim, ReXNet or DMaskingNAS (width_cap '
        '1), or keep the concatenated groups out of the widths',
        [g for g, w in widths.items()
         if w != analysis.groups[g].max_width])
    for name, info in analysis.layers.items():
        cin = int(info.input_width(widths))
        cout = int(info.output_width(widths))
        if (cin, cout) == (info.in_channels, info.out_channels):
            continue
        LAYER_KINDS[info.kind].resize(model.get_submodule(name), cin, cout)
