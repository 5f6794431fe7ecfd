"""The streaming pass of the Omni model: frames attending to the engine's cache of keys and
values, the text's and the memory units' keys computed on their own, and where a pass writes its
keys (Placement, UnitWrite). A mixin of OmniWorldModel (model/omni.py), which owns the weights
and the full training forward; the cache itself (its slots, its eviction) is model/cache.py.

Knows the network's blocks and the layout of a pass; knows nothing about sessions or solvers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from liveworld.model.attention import MemoryRead
from liveworld.model.layout import Layout, text_positions, unit_positions
from liveworld.model.rope import apply_rope, rope_axis, rope_tables

if TYPE_CHECKING:
    from liveworld.model.omni import FrameInputs


@dataclass
class Placement:
    """Where a cached pass writes its tokens' keys and values in the layer's view, when not all
    in the last rows: `rows` (token start, view row, count) per run of tokens; `mean_into` (one
    layer's [B, H, Dh]) receives the mean key of tokens `mean_rows`, a memory unit's score. The
    first `alone` tokens attend only to each other (a memory unit); the pass's mask and memory
    read describe the tokens after them."""

    rows: tuple[tuple[int, int, int], ...]
    mean_into: torch.Tensor | None = None
    mean_rows: tuple[int, int] = (0, 0)
    alone: int = 0

    def write(self, kv: tuple[torch.Tensor, torch.Tensor], k: torch.Tensor, v: torch.Tensor) -> None:
        for a, row, n in self.rows:
            kv[0][:, :, row:row + n] = k[:, :, a:a + n]
            kv[1][:, :, row:row + n] = v[:, :, a:a + n]
        if self.mean_into is not None:
            a, b = self.mean_rows
            self.mean_into.copy_(k[:, :, a:b].mean(2))


@dataclass
class UnitWrite:
    """A memory unit computed inside the engine's fused pass instead of a pass of its own: its
    tokens [B, m, P] (model/memory.summarize) at stream frame number `frame`, written to view
    rows `row`..`row + m`, its per-layer mean key into `mean_keys[layer]` [B, H, Dh]. Its
    tokens see only each other, as in `memory_kv`."""

    tokens: torch.Tensor
    frame: int
    row: int
    mean_keys: list[torch.Tensor]


class StreamingPass:
    """The cached passes of OmniWorldModel (it inherits them): forward_cached, text_kv, memory_kv."""

    def forward_cached(self, seg: FrameInputs, kv: list[tuple[torch.Tensor, torch.Tensor]], frame: int | torch.Tensor,
                       guidance: torch.Tensor | None = None, want_heads: bool = True,
                       mask: torch.Tensor | None = None, read: MemoryRead | None = None, unit: UnitWrite | None = None):
        """F frames (seg, frame numbers frame .. frame + F - 1) attending to the engine's cache:
        the streaming pass. The engine passes one frame, or two: the finished frame at t = 0
        (its cache write) fused with the first solver pass of the frame after it.

        kv: per layer (keys, values) [B, H, Lk, Dh] holding the rotated keys of the text and the
        cached frames, with this segment's F * N rows last (written here; model/cache.py).
        `frame` uses the frame numbering the cached keys were rotated with (a tensor [B]: one per
        stream of a batch of streams). mask [F*N, Lk] or [B, 1, F*N, Lk] bool: which keys each
        token sees (None: all of them); read: where the memory units are in kv and which queries
        read them (model/attention.py); unit: a memory unit entering the bank, whose keys this
        pass computes beside the frames' (UnitWrite; `mask` and `read` describe the frames).
        Returns the clean estimates of the segment's last frame (video x̂_0 [B, 1, C, h, w],
        audio x̂_0 or None), or (None, None) for a pass that only writes the cache (want_heads False).
        """
        grid = tuple(seg.video.shape[-2:])
        x, cond = self.embed(None, [seg], guidance)
        cond = cond[:, 1:]  # no text segment in this pass: slot 0 of `embed` is the text's
        lay, tab, rope = self._frames(grid, frame, seg.frames, x.device)
        N = lay.tokens_per_frame
        slot, start, place = tab["slot"], 0, None
        if unit is not None:  # its tokens go first: [unit | frames], with a condition slot of their own
            x_u, cond_u, rope_u = self._unit_inputs(unit.tokens, unit.frame, grid, guidance)
            m, L = x_u.shape[1], x.shape[1]
            x = torch.cat([x_u, x], 1)
            slot = torch.cat([torch.full((m,), cond.shape[1], dtype=slot.dtype, device=slot.device), slot])
            cond = torch.cat([cond, cond_u], 1)
            rope = (torch.cat([rope_u[0], rope[0]]), torch.cat([rope_u[1], rope[1]]))
            Lk = kv[0][0].shape[2]
            start = m
        video = (start, N, lay.video_offset, grid)
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            # a cache-only pass needs the last layer's keys and values, not its output; in a fused
            # pass, the frame being written (and a unit) need no output from the last layer either
            keep = N if i == last and (seg.frames > 1 or unit is not None) else 0
            if unit is not None:
                place = Placement(((0, unit.row, m), (m, Lk - L, L)), unit.mean_keys[i], (0, m), alone=m)
            layer_read = dataclasses.replace(read, layer=i) if read is not None and read.mean_keys is not None else read
            if i < len(self.convs):
                x = self.convs[i](x, cond, slot, video)
            x = blk(x, cond, slot, rope, mask, video, kv=kv[i], kv_only=not want_heads and i == last, read=layer_read,
                    keep=keep, place=place)
        if not want_heads:
            return None, None
        if seg.frames > 1 or unit is not None:  # the heads read the last frame alone (its rows are all x still holds)
            lay, tab = self._frame_layout(grid, 1, x.device)[:2]
            cond = cond[:, seg.frames - 1:seg.frames]
        return self._clean_estimate(seg.last(), *self._heads(x, cond, tab, lay, 1))

    def _unit_inputs(self, units: torch.Tensor, frame: int, grid: tuple[int, int], guidance: torch.Tensor | None):
        """A memory unit's tokens [B, m, D], its condition [B, 1, D] (flow time 0, no action) and
        its RoPE cos/sin [m, Dh/2] at stream frame number `frame`: what every pass that computes a
        unit's keys feeds (memory_kv, the fused pass, a full forward's memory segment)."""
        B = units.shape[0]
        dev = units.device
        x = self.memory_in(units.to(self.memory_in.weight.dtype)) + self.memory_kind
        w_emb = self.guidance_embed(guidance, B, dev)
        zero = torch.zeros(B, 1, device=dev, dtype=x.dtype)
        cond = self.t_embed(zero) + self.d_embed(zero) + w_emb[:, None]
        tab = unit_positions(grid, self.cfg.memory_patch, frame, dev)
        return x, cond, rope_tables(tab, self.cfg.rope_split)

    def _frame_layout(self, grid: tuple[int, int], count: int, device) -> tuple[Layout, dict, torch.Tensor, torch.Tensor]:
        """The layout of `count` frames, its token table and its row/col RoPE cos/sin, built once
        per (grid, count)."""
        key = (grid, count, str(device))
        if key not in self._frame_tables:
            lay = Layout(0, self.cfg.audio_tokens, grid, 0, count, memory_patch=self.cfg.memory_patch)  # consecutive frames
            tab = lay.token_table(device)
            tab["slot"] = tab["slot"] - 1
            f, r, c = self.cfg.rope_split
            rc = torch.cat([rope_axis(tab["row"], r), rope_axis(tab["col"], c)], -1)
            self._frame_tables[key] = (lay, tab, rc.cos().float(), rc.sin().float())
        return self._frame_tables[key]

    def _frames(self, grid: tuple[int, int], frame, count: int, device) -> tuple[Layout, dict, tuple]:
        """The layout of `count` consecutive frames, its token table and its RoPE from frame number
        `frame` on: an int (cos/sin [L, Dh/2]), or one number per stream of a batch, a tensor [B]
        (cos/sin [B, 1, L, Dh/2]). The table and the row/col angles are built once per (grid,
        count); only the frame angles change per call."""
        lay, tab, cos_rc, sin_rc = self._frame_layout(grid, count, device)
        if isinstance(frame, int):
            fa = rope_axis(frame + torch.arange(count, device=device), self.cfg.rope_split[0])  # [count, f/2]
            fa = fa.repeat_interleave(lay.tokens_per_frame, 0)
            cos = torch.cat([fa.cos().float(), cos_rc], -1)
            sin = torch.cat([fa.sin().float(), sin_rc], -1)
            return lay, tab, (cos, sin)
        B = frame.shape[0]
        nums = (frame.to(device)[:, None] + torch.arange(count, device=device)[None]).flatten()
        fa = rope_axis(nums, self.cfg.rope_split[0]).view(B, count, -1).repeat_interleave(lay.tokens_per_frame, 1)
        cos = torch.cat([fa.cos().float(), cos_rc.expand(B, -1, -1)], -1)[:, None]
        sin = torch.cat([fa.sin().float(), sin_rc.expand(B, -1, -1)], -1)[:, None]
        return lay, tab, (cos, sin)

    def text_kv(self, text: torch.Tensor, text_valid: torch.Tensor | None = None, guidance: torch.Tensor | None = None):
        """Per-layer un-rotated (k, v) [B, H, T, Dh] of the text segment alone: text attends only
        to itself, so its keys never depend on frames and can be recomputed when the prompt changes."""
        B, T = text.shape
        x = self.text_in(text) + self.kind_embed[0]
        cond = self.guidance_embed(guidance, B, text.device)[:, None]
        tab = {**text_positions(T, device=text.device), "slot": torch.zeros(T, dtype=torch.long, device=text.device)}
        rope = rope_tables(tab, self.cfg.rope_split)
        mask = None
        if text_valid is not None:
            mask = (text_valid[:, None, :] | torch.eye(T, dtype=torch.bool, device=text.device)[None])[:, None]
        kvs: list = []
        for i, blk in enumerate(self.blocks):  # the last layer's keys and values, not its output
            x = blk(x, cond, tab["slot"], rope, mask, None, out_kv=kvs, kv_only=i == len(self.blocks) - 1)
        return kvs

    def memory_kv(self, units: torch.Tensor, frame: int, grid: tuple[int, int], guidance: torch.Tensor | None = None):
        """Per-layer (k, v) [B, H, m, Dh] of one memory unit per stream (units [B, m, P], from
        model/memory.summarize), keys rotated at stream frame number `frame`. A unit sees only
        itself, so these are the keys and values a full pass computes for it, wherever it sits:
        the engine computes them once, when the unit enters the bank."""
        x, cond, rope = self._unit_inputs(units, frame, grid, guidance)
        slot = torch.zeros(x.shape[1], dtype=torch.long, device=x.device)
        kvs: list = []
        for i, blk in enumerate(self.blocks):  # the last layer's keys and values, not its output
            x = blk(x, cond, slot, rope, None, None, out_kv=kvs, kv_only=i == len(self.blocks) - 1)
        return [(apply_rope(k, *rope), v) for k, v in kvs]
