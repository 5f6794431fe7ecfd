"""The streaming KV cache: [text] + [sink frames] + [a rolling window of recent frames].

Per layer it keeps un-rotated keys and values, [B, H, N, Dh] per frame. Positions are given
when the prefix is assembled, relative to the cache (text at frame -1, cached frames at
0..n-1, the frame being generated at n), so they stay bounded however long the stream runs:
frame 10,000 sees exactly the positions frame 10 saw. Frames that leave the window are dropped
(the sink frames stay: they anchor attention, as in StreamingLLM, Xiao et al. 2024).

Sized from the model's config (window = frames per training clip - 1), never from literals.
Knows tensors and positions; knows nothing about the model's layers.
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
    text: list[LayerKV] | None = None
    text_valid: torch.Tensor | None = None  # [B, T]
    frames: list[list[LayerKV]] = field(default_factory=list)  # [frame][layer] -> (k, v)

    @property
    def capacity(self) -> int:
        return self.sink_frames + self.window_frames

    def __len__(self) -> int:
        return len(self.frames)

    def set_text(self, kvs: list[LayerKV], valid: torch.Tensor) -> None:
        self.text, self.text_valid = kvs, valid

    def append(self, kvs: list[LayerKV]) -> None:
        self.frames.append(kvs)
        if len(self.frames) > self.capacity:
            del self.frames[self.sink_frames]  # the oldest frame after the sinks leaves

    def reset(self) -> None:
        self.frames.clear()

    def prefix(self) -> tuple[list[LayerKV], torch.Tensor | None]:
        """Rotated per-layer (k, v) of text + cached frames, and the key-validity mask [B, Lp]."""
        n = len(self.frames)
        layers = len(self.text) if self.text is not None else len(self.frames[0])
        N = self.layout.tokens_per_frame
        tab = self.layout.token_table()
        rows, cols = tab["row"], tab["col"]
        T = self.text[0][0].shape[2] if self.text is not None else 0
        frame_pos = torch.cat([torch.full((T,), -1), torch.arange(n).repeat_interleave(N)])
        row_pos = torch.cat([torch.zeros(T, dtype=torch.long), rows.repeat(n)])
        col_pos = torch.cat([torch.arange(T), cols.repeat(n)])
        cos, sin = rope_tables({"frame": frame_pos, "row": row_pos, "col": col_pos}, self.rope_split)
        out = []
        for layer in range(layers):
            ks = ([self.text[layer][0]] if self.text is not None else []) + [f[layer][0] for f in self.frames]
            vs = ([self.text[layer][1]] if self.text is not None else []) + [f[layer][1] for f in self.frames]
            k = torch.cat(ks, 2)
            out.append((apply_rope(k, cos.to(k.device), sin.to(k.device)), torch.cat(vs, 2)))
        valid = None
        if self.text_valid is not None:
            B = self.text_valid.shape[0]
            valid = torch.cat([self.text_valid, torch.ones(B, n * N, dtype=torch.bool, device=self.text_valid.device)], 1)
        return out, valid

    def nbytes(self) -> int:
        total = 0
        for group in ([self.text] if self.text is not None else []) + self.frames:
            for k, v in group:
                total += k.numel() * k.element_size() + v.numel() * v.element_size()
        return total
