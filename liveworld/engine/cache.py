"""The streaming KV cache: [text] + [sink frames] + [a rolling window of recent frames], in
buffers allocated once.

Per layer it keeps the frames' un-rotated keys and values in a ring of `capacity` frame slots
([1, H, capacity * N, Dh], N tokens a frame): writing a frame is one copy into its slot, never
a concatenation. Positions are given when the prefix is read, relative to the cache (text at
frame -1, the cached frames at 0..n-1 from oldest to newest, the frame being generated at n),
so they stay bounded however long the stream runs: frame 10,000 sees exactly the positions
frame 10 saw. Attention does not care in which order keys sit, so the ring is never reordered;
only the rotation table follows it. The text's keys are rotated once, when the text is set;
only its valid tokens are kept, so no attention mask is needed.

Frames that leave the window are overwritten. Sink frames (StreamingLLM, Xiao et al. 2024)
stay for ever; the default is none, because training never showed the model a gap between a
sink and the window (liveworld/train/objective.py): a cache must hold what training fed.

Sized from the model's config, never from literals. Knows tensors and positions; knows nothing
about the model's layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from liveworld.model.layout import Layout
from liveworld.model.omni import apply_rope, rope_tables

LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class KVCache:
    sink_frames: int
    window_frames: int
    rope_split: tuple[int, int, int]
    layout: Layout  # the one-frame layout (token rows/cols) of this world
    text: list[LayerKV] | None = None  # per layer (rotated keys, values) [1, H, T, Dh] of the valid text tokens
    keys: torch.Tensor | None = None  # [layers, 1, H, capacity * N, Dh], un-rotated
    values: torch.Tensor | None = None
    slot_frame: list[int] = field(default_factory=list)  # stream index of the frame in each slot (-1: empty)
    written: int = 0  # frames written since the last reset
    _rope: dict = field(default_factory=dict)  # rank of each slot -> (cos, sin) of the ring's keys

    @property
    def capacity(self) -> int:
        return self.sink_frames + self.window_frames

    def __len__(self) -> int:
        return min(self.written, self.capacity)

    def set_text(self, kvs: list[LayerKV]) -> None:
        """Per-layer un-rotated (k, v) [1, H, T, Dh] of the text's valid tokens (T may be 0)."""
        T = kvs[0][0].shape[2]
        pos = {"frame": torch.full((T,), -1), "row": torch.zeros(T, dtype=torch.long), "col": torch.arange(T)}
        cos, sin = rope_tables(pos, self.rope_split)
        self.text = [(apply_rope(k, cos.to(k.device), sin.to(k.device)), v) for k, v in kvs]

    def _slot(self) -> int:
        """The slot the next frame goes to: the next free one, else the oldest after the sinks."""
        if self.written < self.capacity:
            return self.written
        window = [i for i in range(self.sink_frames, self.capacity)]
        return min(window, key=lambda i: self.slot_frame[i])

    def append(self, kvs: list[LayerKV]) -> None:
        """Writes one frame's per-layer un-rotated (k, v) [1, H, N, Dh] into its slot."""
        N = self.layout.tokens_per_frame
        if self.keys is None:
            k0 = kvs[0][0]
            shape = (len(kvs), k0.shape[0], k0.shape[1], self.capacity * N, k0.shape[3])
            self.keys = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
            self.values = torch.zeros_like(self.keys)
            self.slot_frame = [-1] * self.capacity
        i = self._slot()
        for layer, (k, v) in enumerate(kvs):
            self.keys[layer, :, :, i * N:(i + 1) * N] = k
            self.values[layer, :, :, i * N:(i + 1) * N] = v
        self.slot_frame[i] = self.written
        self.written += 1

    def reset(self) -> None:
        self.written = 0
        self.slot_frame = [-1] * self.capacity

    def _rotation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for the ring's keys: each slot at its frame's rank, oldest = 0."""
        n = len(self)
        frames = self.slot_frame[:n]
        rank = {f: r for r, f in enumerate(sorted(frames))}
        order = tuple(rank[f] for f in frames)  # a few distinct orders: the ring's phases
        if order not in self._rope:
            tab = self.layout.token_table()
            N = self.layout.tokens_per_frame
            frame = torch.tensor(order).repeat_interleave(N)
            pos = {"frame": frame, "row": tab["row"].repeat(n), "col": tab["col"].repeat(n)}
            cos, sin = rope_tables(pos, self.rope_split)
            self._rope[order] = (cos.to(self.keys.device), sin.to(self.keys.device))
        return self._rope[order]

    def prefix(self) -> list[LayerKV]:
        """Per layer (rotated keys, values) [1, H, T + n * N, Dh] of the text and the cached frames."""
        n, N = len(self), self.layout.tokens_per_frame
        out = []
        for layer in range(len(self.text) if self.text is not None else self.keys.shape[0]):
            parts_k, parts_v = [], []
            if self.text is not None:
                parts_k.append(self.text[layer][0])
                parts_v.append(self.text[layer][1])
            if n:
                cos, sin = self._rotation()
                parts_k.append(apply_rope(self.keys[layer, :, :, : n * N], cos, sin))
                parts_v.append(self.values[layer, :, :, : n * N])
            out.append((torch.cat(parts_k, 2), torch.cat(parts_v, 2)) if len(parts_k) > 1 else (parts_k[0], parts_v[0]))
        return out

    def nbytes(self) -> int:
        total = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in (self.text or []))
        if self.keys is not None:
            total += 2 * self.keys.numel() * self.keys.element_size()
        return total
