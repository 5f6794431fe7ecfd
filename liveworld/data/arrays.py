"""Whole-split arrays for training tokenizers: every frame (resized) or every frame's audio of a
dataset split, stacked in memory. Small worlds fit: 50k frames at 64x48 are 460 MB of uint8.

Knows episodes and resizing, not models.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from liveworld.common import LiveworldError
from liveworld.data.shards import Dataset


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> uint8 [T, 3, H', W'] at size = (W', H'), area-averaged."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    if (x.shape[3], x.shape[2]) == tuple(size):
        return x.contiguous()
    out = []
    for chunk in x.split(512):
        y = F.interpolate(chunk.float(), size=(size[1], size[0]), mode="area")
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def gather_frames(chunks: Iterable[torch.Tensor], max_frames: int | None, empty: str) -> torch.Tensor:
    """Per-episode arrays [n, ...] stacked until `max_frames` rows (None: all); reads no episode
    past the limit. `empty`: the error when there is none."""
    out, n = [], 0
    for x in chunks:
        out.append(x)
        n += len(x)
        if max_frames and n >= max_frames:
            break
    if not out:
        raise LiveworldError(empty)
    x = torch.cat(out)
    return x[:max_frames] if max_frames else x


def split_frames(ds: Dataset, split: str, size: tuple[int, int], max_frames: int | None = None) -> torch.Tensor:
    return gather_frames((resize_frames(ep.frames, size) for ep in ds.episodes(split)), max_frames,
                         f"{ds.root} has no {split!r} episodes; record more episodes (every --val-every-th is validation)")


def split_audio(ds: Dataset, split: str, max_frames: int | None = None) -> tuple[torch.Tensor, int, int]:
    """Every frame's audio of a split as int16 [N, C, S] (frames of the modal length only), with
    the sample rate and the samples per frame."""
    rate, length = None, None

    def frames():
        nonlocal rate, length
        for ep in ds.episodes(split):
            if not ep.has_audio:
                continue
            lengths = np.diff(ep.audio_offsets)
            if length is None:
                rate, length = int(ep.meta["sample_rate_hz"]), int(np.bincount(lengths).argmax())
            starts = ep.audio_offsets[np.flatnonzero(lengths == length)]
            idx = starts[:, None] + np.arange(length)[None]
            yield torch.from_numpy(ep.audio[idx]).permute(0, 2, 1).contiguous()  # [N, C, S]

    x = gather_frames(frames(), max_frames,
                      f"{ds.root} has no audio in its {split!r} episodes; record a world with sound (doom:, atari:)")
    return x, rate, length
