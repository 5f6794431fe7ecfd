"""The streaming KV cache: [text] + [memory] + [a rolling window of recent frames] + [the frames
being written and made], in one buffer per layer allocated once.

Layout of a layer's buffer, [1, H, 2 * text_len + U * m + (capacity + 2) * N, Dh] (N tokens a
frame, U memory units of m tokens each):

    [ text for the next frame | ... text | memory units | ring of `capacity` frame slots | spare A | spare B ]

The first region holds the text right-aligned. The text proper sits right against the memory
units held, which fill from the right (bank slot i just left of slot i - 1), so a frame's pass
attends to one contiguous block, [text | units held | window | itself], however full the bank
is. The text is rewritten (a few rows) whenever it moves: at every commit (re-rotated) and when
the bank grows.

Keys are stored rotated (RoPE) at their frame's number in the stream, so a frame's keys are
rotated once, when written, and never again; a memory unit's at its frame's number. RoPE makes
attention depend only on differences of positions, so what the model sees is exactly the
relative layout training fed it: the text one frame before the oldest cached frame, the cached
frames, the new frame right after the newest, the units at their frames (tests check long
streams against the full-context reference sampler). Angles are computed in float64, so frame
10,000,000 rotates as precisely as frame 10.

Two kinds of pass (engine/runner.py):
  * one frame (`frame_views`): a solver pass writes the frame's keys into the slot it will own,
    the next free slot while the window fills, else spare A; it sees text, memory and window.
  * the fused pass (`fused_views`): the finished frame k (its cache write, at t = 0) and the
    first solver pass of frame k + 1 in one pass, in the slots of k and k + 1. A mask gives
    each frame what training gave it: k sees the text and the window before it (never the
    memory, model/layout.py); k + 1 sees the memory, the window after k joins it (the oldest
    frame leaves) and the text re-rotated for that window ("text for the next frame").
When a frame is committed, spare A is copied over the oldest frame's slot. Nothing is
concatenated, and memory does not grow with the stream.

A frame's keys are computed once, when it is written, seeing the window of that moment and
the text where it sat then; the reference sampler (model/sampling.py) recomputes the whole
window every frame instead. Within the first window the two are equal, and so are the fused
and separate cache writes at any length (tests); once frames leave the window they differ a
little (on the bundled world, at most 0.009 in latent units against a latent std of 0.9 over 40
frames: docs/RESULTS.md), which is why the engine's own stream is compared with itself there.

No sink frames: training never showed the model a gap between a sink and the window
(liveworld/train/objective.py), and a cache must hold what training fed.

Sized from the model's config, never from literals. Knows tensors and positions; knows nothing
about the model's layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from liveworld.model.attention import MemoryRead
from liveworld.model.layout import text_positions
from liveworld.model.rope import apply_rope, rope_tables

LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class KVCache:
    window_frames: int
    tokens_per_frame: int
    text_len: int  # the most text tokens the model takes
    rope_split: tuple[int, int, int]
    memory_units: int = 0  # bank capacity U (0: no memory)
    unit_tokens: int = 0  # m
    keys: torch.Tensor | None = None  # [layers, 1, H, rows, Dh] (module docstring), rotated
    values: torch.Tensor | None = None
    text_keys: list[torch.Tensor] = field(default_factory=list)  # per layer, un-rotated [1, H, T, Dh]
    text_values: list[torch.Tensor] = field(default_factory=list)
    slot_frame: list[int] = field(default_factory=list)  # stream frame number in each slot (-1: empty)
    written: int = 0  # frames written since the last reset = the number of the next frame
    memory_count: int = 0  # units held
    unit_mean_keys: torch.Tensor | None = None  # [layers, 1, H, U, Dh]: each unit's mean rotated key, in row order

    @property
    def capacity(self) -> int:
        return self.window_frames

    def __len__(self) -> int:
        return min(self.written, self.capacity)

    @property
    def text_tokens(self) -> int:
        return self.text_keys[0].shape[2] if self.text_keys else 0

    # -- where things are ------------------------------------------------------------------
    @property
    def _memory_end(self) -> int:
        return 2 * self.text_len + self.memory_units * self.unit_tokens

    def _memory_start(self) -> int:
        """The first row of the units held (the text sits right before it)."""
        return self._memory_end - self.memory_count * self.unit_tokens

    def _slot_row(self, slot: int) -> int:
        """The buffer row where frame slot `slot` starts (spare A is slot `capacity`)."""
        return self._memory_end + slot * self.tokens_per_frame

    def _fused_view_start(self) -> int:
        """The first buffer row of `fused_views`' view: the text for the next frame."""
        return self.text_len - self.text_tokens

    def _slot_of_next(self) -> int:
        """Where the next frame's keys go while it is made: its own slot, or spare A."""
        return self.written if self.written < self.capacity else self.capacity

    def allocate(self, layers: int, heads: int, head_dim: int, device, dtype) -> None:
        L = self._slot_row(self.capacity + 2)
        self.keys = torch.zeros(layers, 1, heads, L, head_dim, device=device, dtype=dtype)
        self.values = torch.zeros_like(self.keys)
        self.slot_frame = [-1] * self.capacity
        if self.memory_units:  # units are right-aligned like their rows: bank slot i at index U - 1 - i
            self.unit_mean_keys = torch.zeros(layers, 1, heads, self.memory_units, head_dim, device=device, dtype=dtype)

    def nbytes(self) -> int:
        return 2 * self.keys.numel() * self.keys.element_size() if self.keys is not None else 0

    # -- text and memory ---------------------------------------------------------------------
    def set_text(self, kvs: list[LayerKV]) -> None:
        """Per-layer un-rotated (k, v) [1, H, T, Dh] of the text's valid tokens (T may be 0)."""
        T = kvs[0][0].shape[2]
        if T > self.text_len:
            raise ValueError(f"{T} text tokens, the cache holds {self.text_len}")
        self.text_keys = [k for k, _ in kvs]
        self.text_values = [v for _, v in kvs]
        self._place_text()

    def _place_text(self) -> None:
        """The text one frame before the oldest cached frame (training's frame -1), right before
        the memory units; its copy for the next frame one frame before the oldest frame of the
        window after the next commit, at the start of the buffer."""
        T = self.text_tokens
        if not T:
            return
        oldest = self.written - len(self)
        oldest_next = self.written + 1 - min(self.written + 1, self.capacity)
        for first, end in ((oldest, self._memory_start()), (oldest_next, self.text_len)):
            cos, sin = rope_tables(text_positions(T, first - 1), self.rope_split)
            cos, sin = cos.to(self.keys.device), sin.to(self.keys.device)
            for layer, (k, v) in enumerate(zip(self.text_keys, self.text_values)):
                self.keys[layer, :, :, end - T: end] = apply_rope(k, cos, sin)
                self.values[layer, :, :, end - T: end] = v

    def write_unit(self, slot: int, kvs: list[LayerKV]) -> None:
        """A memory unit's per-layer (k rotated, v) [1, H, m, Dh] into bank slot `slot` (slots
        fill in order 0, 1, ..., then are reused)."""
        if not 0 <= slot < self.memory_units or slot > self.memory_count:
            raise ValueError(f"memory slot {slot} of {self.memory_count} held, capacity {self.memory_units}")
        m = self.unit_tokens
        rows = slice(self._memory_end - (slot + 1) * m, self._memory_end - slot * m)
        for layer, (k, v) in enumerate(kvs):
            self.keys[layer, :, :, rows] = k
            self.values[layer, :, :, rows] = v
            self.unit_mean_keys[layer, :, :, self.memory_units - 1 - slot] = k.mean(2)  # the read's unit score, once
        if slot == self.memory_count:  # the bank grew: the text moves left of the new unit
            self.memory_count += 1
            self._place_text()

    def reserve_unit(self, slot: int) -> tuple[int, list[torch.Tensor]]:
        """Bank slot `slot` for a unit whose keys and values the next fused pass computes (the
        engine's way; `write_unit` takes ready ones): the bookkeeping of `write_unit` now, and
        where the pass writes: the unit's first row in `fused_views`' view, and per layer the
        [1, H, Dh] place of its mean key."""
        if not 0 <= slot < self.memory_units or slot > self.memory_count:
            raise ValueError(f"memory slot {slot} of {self.memory_count} held, capacity {self.memory_units}")
        if slot == self.memory_count:
            self.memory_count += 1
            self._place_text()
        first = self._memory_end - (slot + 1) * self.unit_tokens
        means = [self.unit_mean_keys[layer, :, :, self.memory_units - 1 - slot] for layer in range(self.keys.shape[0])]
        return first - self._fused_view_start(), means

    # -- views -----------------------------------------------------------------------------
    def _views(self, start: int, end: int) -> list[LayerKV]:
        return [(self.keys[i, :, :, start:end], self.values[i, :, :, start:end]) for i in range(self.keys.shape[0])]

    def frame_views(self) -> list[LayerKV]:
        """Per layer (keys, values) [1, H, T + u m + (n + 1) * N, Dh]: the text, the u memory
        units held, the n cached frames and, last, the rows of the frame in this pass (each pass
        writes its keys there)."""
        end = self._slot_row(self._slot_of_next() + 1)
        return self._views(self._memory_start() - self.text_tokens, end)

    def write_views(self) -> tuple[list[LayerKV], torch.Tensor | None]:
        """For a cache-only pass of frame `written`: the one-frame views and, once the bank holds
        units, the mask [N, Lk] that hides them (a cache write never sees the memory)."""
        views = self.frame_views()
        if not self.memory_count:
            return views, None
        T, L = self.text_tokens, views[0][0].shape[2]
        rows = torch.arange(self._memory_start() - T, self._memory_start() - T + L)
        hidden = (rows >= self._memory_start()) & (rows < self._memory_end)
        return views, (~hidden).expand(self.tokens_per_frame, -1).to(self.keys.device)

    def fused_views(self) -> tuple[list[LayerKV], torch.Tensor]:
        """For the pass that writes frame `written` and makes frame `written + 1`: per layer
        (keys, values) ending with the two frames' rows, and the mask [2N, Lk] of what each of
        their tokens may see."""
        N, T, tl = self.tokens_per_frame, self.text_tokens, self.text_len
        j = self._slot_of_next()
        mem0, mem1 = self._memory_start(), self._memory_end
        start, end = self._fused_view_start(), self._slot_row(j + 2)
        rows = torch.arange(start, end)
        text_next = rows < tl
        text = (rows >= mem0 - T) & (rows < mem0)
        memory = (rows >= mem0) & (rows < mem1)
        slot = torch.where(rows >= mem1, (rows - mem1) // N, -1)
        cached = (slot >= 0) & (slot < j)  # the window; while it fills, only written slots are in view
        evicted = torch.zeros_like(cached)
        if self.written >= self.capacity:  # the oldest frame leaves when frame `written` joins
            oldest = min(range(self.capacity), key=lambda i: self.slot_frame[i])
            evicted = slot == oldest
        own, nxt = slot == j, slot == j + 1
        mask = torch.cat([(text | cached | own).expand(N, -1),
                          (memory | text_next | (cached & ~evicted) | own | nxt).expand(N, -1)])
        return self._views(start, end), mask.to(self.keys.device)

    def memory_read(self, top_k: int, fused: bool) -> MemoryRead | None:
        """Where the units are in this pass's view and which queries read them: a one-frame pass's
        (its view starts with the text), or the fused pass's (only the frame being made reads)."""
        if not self.memory_count:
            return None
        N = self.tokens_per_frame
        view_start = self._fused_view_start() if fused else self._memory_start() - self.text_tokens
        start = self._memory_start() - view_start
        held = self.unit_mean_keys[:, :, :, self.memory_units - self.memory_count:]
        return MemoryRead(start, self.memory_count, self.unit_tokens, ((N, N),) if fused else ((0, N),), top_k,
                          mean_keys=tuple(held.unbind(0)), rows_see_all=True)

    # -- stream ------------------------------------------------------------------------------
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
        self._place_text()
