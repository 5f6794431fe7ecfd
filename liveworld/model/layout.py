"""Where every token of the unified stream sits: its segment, frame, (frame, row, col) position
for RoPE, and who may attend to whom.

Shape legend: T text tokens, F frames in a segment, N = 1 + Na + h*w tokens per frame
(one action token, Na audio tokens, an h x w grid of video tokens, in that order), L tokens in all.

A sequence is [memory (U x m)] [text (T)] [clean frames (Fc x N)] [noisy frames (Fn x N)]:
  - a memory unit (model/memory.py: m tokens summarising a frame that left the window) sees
    only itself, so its keys never change once it is in the bank;
  - the text segment (a prompt or the latest notification) sees only itself;
  - clean frame f (the KV cache: context as it was generated) sees the text, clean frames <= f;
  - noisy frame f (being denoised) sees the memory, the text, clean frames < f, and itself.
Clean frames do not see the memory: their cached keys then depend only on the window, never on
what the bank held when they were written, so the engine's cache equals a recomputation.
Inside a frame attention is bidirectional; across frames it is causal. Training uses Fc = Fn = F
(every frame is predicted from the clean frames before it, the same computation the engine does
with its cache); the engine uses Fc = the cache, Fn = 1.

Without a clean stream (Fc = 0, a model that attends to no frame: OmniConfig.frames = 1) the
noisy frames are predicted apart, each from its own stack, and all sit at one frame number.

Positions: text tokens sit at frame -1 (before every frame), row 0, col = index; a frame's
action token at (frame, 0, 0), audio token j at (frame, 0, 1 + j), video token (r, c) at
(frame, 1 + r, 1 + c); a memory token at the top-left video position of its patch, at its
unit's frame number, which differs per stream and so is not in this table (`frame` 0 here; the
model adds each unit's frame). Frame numbers are relative to the first frame of the cache, so they stay
bounded however long a stream runs.

This module knows token layout; it knows nothing about what the tokens hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from liveworld.model.memory import unit_grid


def text_positions(T: int, frame: int = -1, device=None) -> dict[str, torch.Tensor]:
    """(frame, row, col) of T text tokens: one frame before the first frame they precede, row 0,
    col = index. The one rule for text, wherever its keys are made (full pass, cache, text_kv)."""
    return {"frame": torch.full((T,), frame, device=device), "row": torch.zeros(T, dtype=torch.long, device=device),
            "col": torch.arange(T, device=device)}


def unit_positions(grid: tuple[int, int], p: int, frame: int = 0, device=None) -> dict[str, torch.Tensor]:
    """(frame, row, col) of a memory unit's tokens: its frame's number, and the top-left video
    position of each p x p patch (model/memory.py)."""
    rows, cols = unit_grid(grid, p)
    return {"frame": torch.full((len(rows),), frame, device=device), "row": rows.to(device), "col": cols.to(device)}


@dataclass(frozen=True)
class Layout:
    text_len: int
    audio_tokens: int
    grid: tuple[int, int]  # (h, w) video tokens
    clean_frames: int
    noisy_frames: int
    noisy_frame_offset: int = 0  # frame number of the first noisy frame minus that of the first clean one
    memory_units: int = 0
    memory_patch: int = 2  # a memory token summarises a p x p patch of the latent grid
    # Noisy frames predicted apart (no clean stream: a model with a window of 0 frames) all sit
    # at the first noisy position, where sampling puts its one frame: their keys see only the
    # text and themselves, so only their distance to the text would differ, and it must not.
    apart: bool = False

    @property
    def tokens_per_frame(self) -> int:
        return 1 + self.audio_tokens + self.grid[0] * self.grid[1]

    @property
    def video_offset(self) -> int:
        return 1 + self.audio_tokens

    @property
    def frames(self) -> int:
        return self.clean_frames + self.noisy_frames

    @property
    def unit_tokens(self) -> int:
        return (self.grid[0] // self.memory_patch) * (self.grid[1] // self.memory_patch)

    @property
    def memory_len(self) -> int:
        return self.memory_units * self.unit_tokens

    @property
    def frames_start(self) -> int:
        """Where the first frame's tokens start."""
        return self.memory_len + self.text_len

    @property
    def length(self) -> int:
        return self.frames_start + self.frames * self.tokens_per_frame

    def token_table(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Per-token integer tables [L]: segment (0 text, 1 clean, 2 noisy, 3 memory), frame, row,
        col, slot, and unit (the memory unit of a memory token, else -1).

        `slot` indexes the per-frame condition vectors: 0 for text, 1 + f for clean frame f,
        1 + Fc + f for noisy frame f, 1 + Fc + Fn for every memory token.
        """
        h, w = self.grid
        N = self.tokens_per_frame
        rows = torch.cat([torch.zeros(1 + self.audio_tokens, dtype=torch.long), 1 + torch.arange(h).repeat_interleave(w)])
        cols = torch.cat([torch.arange(1 + self.audio_tokens), 1 + torch.arange(w).repeat(h)])
        seg, frame, row, col, slot = [], [], [], [], []
        U, m = self.memory_units, self.unit_tokens
        unit = [torch.arange(U).repeat_interleave(m)] if U else []
        if U:
            up = unit_positions(self.grid, self.memory_patch)  # each stream's unit frames are added by the model
            seg.append(torch.full((U * m,), 3, dtype=torch.long))
            frame.append(up["frame"].repeat(U))
            row.append(up["row"].repeat(U))
            col.append(up["col"].repeat(U))
            slot.append(torch.full((U * m,), 1 + self.frames, dtype=torch.long))
        T = self.text_len
        tp = text_positions(T)
        seg.append(torch.zeros(T, dtype=torch.long))
        frame.append(tp["frame"])
        row.append(tp["row"])
        col.append(tp["col"])
        slot.append(torch.zeros(T, dtype=torch.long))
        for kind, count, offset, slot0 in ((1, self.clean_frames, 0, 1), (2, self.noisy_frames, self.noisy_frame_offset, 1 + self.clean_frames)):
            for f in range(count):
                seg.append(torch.full((N,), kind, dtype=torch.long))
                frame.append(torch.full((N,), offset + (0 if kind == 2 and self.apart else f), dtype=torch.long))
                row.append(rows)
                col.append(cols)
                slot.append(torch.full((N,), slot0 + f, dtype=torch.long))
        unit.append(torch.full((self.length - U * m,), -1, dtype=torch.long))
        table = {k: torch.cat(v).to(device) for k, v in
                 (("segment", seg), ("frame", frame), ("row", row), ("col", col), ("slot", slot), ("unit", unit))}
        return table

    def attention_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """bool [L, L], True where query i may attend to key j (the rules in the module docstring)."""
        tab = self.token_table(device)
        seg_q, seg_k = tab["segment"][:, None], tab["segment"][None, :]
        f_q, f_k = tab["frame"][:, None], tab["frame"][None, :]
        text_k = seg_k == 0
        text_rows = (seg_q == 0) & text_k
        clean_rows = (seg_q == 1) & (text_k | ((seg_k == 1) & (f_k <= f_q)))
        same_noisy_frame = (seg_k == 2) & (f_k == f_q) & (tab["slot"][None, :] == tab["slot"][:, None])
        memory_k = seg_k == 3
        noisy_rows = (seg_q == 2) & (memory_k | text_k | ((seg_k == 1) & (f_k < f_q)) | same_noisy_frame)
        memory_rows = (seg_q == 3) & memory_k & (tab["unit"][:, None] == tab["unit"][None, :])
        return text_rows | clean_rows | noisy_rows | memory_rows
