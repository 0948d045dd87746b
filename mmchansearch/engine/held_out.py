"""The held-out batches a search scores networks on."""
from __future__ import annotations

from collections.abc import Iterable


def held_out_batches(dataloader: Iterable[dict],
                     num_batches: int | None) -> list[dict]:
    """The first ``num_batches`` raw batches of ``dataloader`` (None: all).

    They stay in the dataloader's compact form (uint8 images on the CPU) and
    are preprocessed where they are used.
    """
    batches = []
    for i, batch in enumerate(dataloader):
        if num_batches is not None and i >= num_batches:
            break
        batches.append(batch)
    return batches
