"""The streaming KV cache: [text] + [a rolling window of recent frames] + [the frames being
written and made], in one buffer per layer allocated once.

Layout of a layer's buffer, [1, H, 2 * text_len + (capacity + 2) * N, Dh] (N tokens a frame):

    [ text for the next frame | text | ring of `capacity` frame slots | spare A | spare B ]

(both texts right-aligned in their regions). Keys are stored rotated (RoPE) at their frame's
number in the stream, so a frame's keys are rotated once, when written, and never again. RoPE
makes attention depend only on differences of positions, so what the model sees is exactly the
relative layout training fed it: the text one frame before the oldest cached frame, the cached
frames, the new frame right after the newest (tests check a long stream against the
full-context reference sampler). Angles are computed in float64, so frame 10,000,000 rotates as
precisely as frame 10.

Two kinds of pass (engine/runner.py):
  * one frame (`frame_views`): a solver pass writes the frame's keys into the slot it will own,
    the next free slot while the window fills, else spare A; it sees the text and the window.
  * the fused pass (`fused_views`): the finished frame k (its cache write, at t = 0) and the
    first solver pass of frame k + 1 in one pass, in the slots of k and k + 1. A mask gives
    each frame what training gave it: k sees the text and the window before it; k + 1 sees the
    window after k joins it (the oldest frame leaves) and the text re-rotated for that window,
    which is the "text for the next frame" region.
When a frame is committed, spare A is copied over the oldest frame's slot. Passes attend to one
contiguous view of the buffer: nothing is concatenated, and memory does not grow with the stream.

No sink frames: training never showed the model a gap between a sink and the window
(liveworld/train/objective.py), and a cache must hold what training fed.

Sized from the model's config, never from literals. Knows tensors and positions; knows nothing
about the model's layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from liveworld.model.omni import apply_rope, rope_tables

LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class KVCache:
    window_frames: int
    tokens_per_frame: int
    text_len: int  # the most text tokens the model takes
    rope_split: tuple[int, int, int]
    keys: torch.Tensor | None = None  # [layers, 1, H, 2 * text_len + (capacity + 2) * N, Dh], rotated
    values: torch.Tensor | None = None
    text_keys: list[torch.Tensor] = field(default_factory=list)  # per layer, un-rotated [1, H, T, Dh]
    slot_frame: list[int] = field(default_factory=list)  # stream frame number in each slot (-1: empty)
    written: int = 0  # frames written since the last reset = the number of the next frame

    @property
    def capacity(self) -> int:
        return self.window_frames

    def __len__(self) -> int:
        return min(self.written, self.capacity)

    @property
    def text_tokens(self) -> int:
        return self.text_keys[0].shape[2] if self.text_keys else 0

    def _slot_row(self, slot: int) -> int:
        """The buffer row where frame slot `slot` starts (spare A is slot `capacity`)."""
        return 2 * self.text_len + slot * self.tokens_per_frame

    def allocate(self, layers: int, heads: int, head_dim: int, device, dtype) -> None:
        L = self._slot_row(self.capacity + 2)
        self.keys = torch.zeros(layers, 1, heads, L, head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.slot_frame = [-1] * self.capacity

    def set_text(self, kvs: list[LayerKV]) -> None:
        """Per-layer un-rotated (k, v) [1, H, T, Dh] of the text's valid tokens (T may be 0)."""
        T = kvs[0][0].shape[2]
        if T > self.text_len:
            raise ValueError(f"{T} text tokens, the cache holds {self.text_len}")
        self.text_keys = [k for k, _ in kvs]
        tl = self.text_len
        for layer, (_, v) in enumerate(kvs):
            self.values[layer, :, :, tl - T: tl] = v  # the next frame's copy
            self.values[layer, :, :, 2 * tl - T: 2 * tl] = v
        self._rotate_text()

    def _rotate_text(self) -> None:
        """Text sits one frame before the oldest cached frame (training's frame -1); its second
        copy sits one frame before the oldest frame of the window after the next commit."""
        T = self.text_tokens
        if not T:
            return
        oldest = self.written - len(self)
        oldest_next = self.written + 1 - min(self.written + 1, self.capacity)
        tl = self.text_len
        for first, end in ((oldest, 2 * tl), (oldest_next, tl)):
            pos = {"frame": torch.full((T,), first - 1), "row": torch.zeros(T, dtype=torch.long), "col": torch.arange(T)}
            cos, sin = rope_tables(pos, self.rope_split)
            cos, sin = cos.to(self.keys.device), sin.to(self.keys.device)
            for layer, k in enumerate(self.text_keys):
                self.keys[layer, :, :, end - T: end] = apply_rope(k, cos, sin)

    def _slot_of_next(self) -> int:
        """Where the next frame's keys go while it is made: its own slot, or spare A."""
        return self.written if self.written < self.capacity else self.capacity

    def _views(self, start: int, end: int) -> list[LayerKV]:
        return [(self.keys[i, :, :, start:end], self.values[i, :, :, start:end]) for i in range(self.keys.shape[0])]

    def frame_views(self) -> list[LayerKV]:
        """Per layer (keys, values) [1, H, T + (n + 1) * N, Dh]: the text, the n cached frames
        and, last, the rows of the frame being made (each pass writes its keys there)."""
        end = self._slot_row(self._slot_of_next() + 1)
        return self._views(2 * self.text_len - self.text_tokens, end)

    def fused_views(self) -> tuple[list[LayerKV], torch.Tensor]:
        """For the pass that writes frame `written` and makes frame `written + 1`: per layer
        (keys, values) ending with the two frames' rows, and the mask [2N, Lk] of what each of
        their tokens may see."""
        N, T, tl = self.tokens_per_frame, self.text_tokens, self.text_len
        j = self._slot_of_next()
        start, end = tl - T, self._slot_row(j + 2)
        rows = torch.arange(start, end)
        text_next = rows < tl
        text = (rows >= 2 * tl - T) & (rows < 2 * tl)
        slot = torch.where(rows >= 2 * tl, (rows - 2 * tl) // N, -1)
        cached = (slot >= 0) & (slot < j)  # the window; while it fills, only written slots are in view
        evicted = torch.zeros_like(cached)
        if self.written >= self.capacity:  # the oldest frame leaves when frame `written` joins
            oldest = min(range(self.capacity), key=lambda i: self.slot_frame[i])
            evicted = slot == oldest
        own, nxt = slot == j, slot == j + 1
        mask = torch.cat([(text | cached | own).expand(N, -1),
                          (text_next | (cached & ~evicted) | own | nxt).expand(N, -1)])
        return self._views(start, end), mask.to(self.keys.device)

    def commit(self) -> None:
        """The frame being made is finished (its clean keys are in place): it joins the window,
        replacing the oldest frame once the window is full."""
        N = self.tokens_per_frame
        if self.written < self.capacity:
            self.slot_frame[self.written] = self.written
        else:
            oldest = min(range(self.capacity), key=lambda i: self.slot_frame[i])
            spare = slice(self._slot_row(self.capacity), self._slot_row(self.capacity + 1))
            dst = slice(self._slot_row(oldest), self._slot_row(oldest) + N)
            self.keys[:, :, :, dst] = self.keys[:, :, :, spare]
            self.values[:, :, :, dst] = self.values[:, :, :, spare]
            self.slot_frame[oldest] = self.written
        self.written += 1
        self._rotate_text()

    def reset(self) -> None:
        self.written = 0
        self.slot_frame = [-1] * self.capacity
        self._rotate_text()

    def nbytes(self) -> int:
        return 2 * self.keys.numel() * self.keys.element_size() if self.keys is not None else 0
