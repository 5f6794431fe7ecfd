"""Memory beyond the window: frames that leave the KV window become compact units in a bank of
fixed capacity, which every frame attends to. Training, the reference sampler and the engine
build the bank with this one module, from the frames that left their window.

Shape legend: B batch, U bank capacity (units), m tokens per unit, C video latent channels on
an h x w grid, p the pooling patch, P = C * p * p features per memory token.

    summarize(video [B, C, h, w], p) -> [B, m, P], m = (h / p) * (w / p): a unit is the frame's
        latent grid cut into p x p patches (16 channels x 2 x 2 -> 64 features), one token each:
        p^2 times fewer tokens than the frame (the model embeds them with a learned projection)
    MemoryBank(B, capacity, ...): the units of a batch of streams, each row its own bank
        add(frame, units) -> the slot each row's unit went to (or -1: not kept)
        inputs(first_frame) -> MemoryInputs with frame numbers relative to the window's first frame
    bank_of_prefix(video, capacity, ...): the bank a stream holds after frames 0..T-1 have left
        its window: what training reads for a clip, and where evaluation's rollouts start

What stays when the bank is full (`rule`):
    "recency"  the newest units (first in, first out)
    "novelty"  the unit most like another one leaves (the smallest distance to its nearest
               neighbour, the newcomer included; ties: the older): a bank that keeps many
               different views rather than many copies of the same corridor
A frame becomes a candidate unit every `stride` frames (frame number % stride == 0). Frames are
numbered as the engine's cache numbers them: a stream's first context frame is 0 (its opening
frame, only ever a "previous frame", is -1); a recorded episode's frame e is e - 1.

A unit's tokens attend only to each other (model/layout.py), so a unit's keys and values depend
on nothing else and the engine computes them once, when the unit enters the bank.

Knows latents and frame numbers; knows nothing about the network or the KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

RULES = ("recency", "novelty")


def summarize(video: torch.Tensor, p: int) -> torch.Tensor:
    """video [B, C, h, w] -> memory tokens [B, (h/p)(w/p), C p p], row-major over the patches."""
    B, C, h, w = video.shape
    if h % p or w % p:
        raise ValueError(f"memory patch {p} must divide the latent grid {h}x{w}")
    x = video.reshape(B, C, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)  # [B, h/p, w/p, C, p, p]
    return x.reshape(B, (h // p) * (w // p), C * p * p)


def unit_shape(video_shape: tuple[int, int, int], p: int) -> tuple[int, int]:
    """(m tokens a unit, P features a token) for video latents [C, h, w]."""
    C, h, w = video_shape
    return (h // p) * (w // p), C * p * p


def unit_grid(grid: tuple[int, int], p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (row, col) of each memory token in the frame's token coordinates (a video token (r, c)
    sits at (1 + r, 1 + c)): the top-left token of its patch. -> rows [m], cols [m]."""
    h, w = grid
    r = torch.arange(h // p).repeat_interleave(w // p)
    c = torch.arange(w // p).repeat(h // p)
    return 1 + r * p, 1 + c * p


@dataclass
class MemoryInputs:
    """What the model reads from a bank: tokens [B, U, m, P], frame [B, U] (relative to the first
    clean frame of the pass: negative), valid [B, U] bool (False: an empty slot)."""

    tokens: torch.Tensor
    frame: torch.Tensor
    valid: torch.Tensor

    @property
    def units(self) -> int:
        return self.tokens.shape[1]

    def select(self, idx: torch.Tensor) -> "MemoryInputs":
        return MemoryInputs(self.tokens[idx], self.frame[idx], self.valid[idx])


class MemoryBank:
    """Up to `capacity` units for each of B streams. Rows fill their slots in order (0, 1, ...),
    so a row with n units holds them in slots 0..n-1; once full, the rule picks the slot."""

    def __init__(self, B: int, capacity: int, tokens: int, features: int, rule: str = "recency", stride: int = 1,
                 device=None, dtype=torch.float32):
        if rule not in RULES:
            raise ValueError(f"unknown memory rule {rule!r}; choose one of {RULES}")
        if capacity < 1 or stride < 1:
            raise ValueError(f"memory capacity and stride must be >= 1, got {capacity} and {stride}")
        self.capacity, self.rule, self.stride = capacity, rule, stride
        self.tokens = torch.zeros(B, capacity, tokens, features, device=device, dtype=dtype)
        self.frame = torch.zeros(B, capacity, dtype=torch.long, device=device)  # frame number of each slot's unit
        self.count = torch.zeros(B, dtype=torch.long, device=device)  # units held per row

    def __len__(self) -> int:
        return int(self.count.max()) if self.count.numel() else 0

    def add(self, frame: int | torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """Offers every stream's unit of its frame number `frame` (one int, or [B]; units
        [B, m, P] from `summarize`) -> the slot each row's unit went to [B] (-1: not kept)."""
        B = units.shape[0]
        dev = self.frame.device
        frame = torch.as_tensor(frame, device=dev).expand(B)
        offered = frame % self.stride == 0
        if not offered.any():
            return torch.full((B,), -1, dtype=torch.long, device=dev)
        full = self.count >= self.capacity
        if not full.any():
            slot = self.count.clone()
        elif self.rule == "recency":
            slot = torch.where(full, self.frame.argmin(1), self.count)
        else:
            slot = torch.where(full, self._most_redundant(units), self.count)
        slot = torch.where(offered, slot, torch.full_like(slot, -1))
        self.count = torch.where(offered & ~full, self.count + 1, self.count)
        keep = slot >= 0
        rows = torch.arange(B, device=dev)[keep]
        self.tokens[rows, slot[keep]] = units[keep].to(self.tokens.dtype)
        self.frame[rows, slot[keep]] = frame[keep]
        return slot

    def _most_redundant(self, units: torch.Tensor) -> torch.Tensor:
        """Per row: the slot of the unit with the smallest distance to its nearest neighbour among
        the bank and the newcomer; -1 where that is the newcomer itself (it is not kept)."""
        B, U = self.frame.shape
        pool = torch.cat([self.tokens, units[:, None].to(self.tokens.dtype)], 1).flatten(2).float()  # [B, U+1, m P]
        dist = torch.cdist(pool, pool)
        dist.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        nearest = dist.min(2).values  # [B, U+1]
        tied = nearest <= nearest.min(1, keepdim=True).values * (1 + 1e-6) + 1e-12
        age = torch.cat([self.frame, torch.full((B, 1), 2**62, device=self.frame.device)], 1)  # the newcomer is newest
        first = torch.where(tied, age, torch.full_like(age, 2**63 - 1)).argmin(1)  # ties: the older leaves
        return torch.where(first == U, torch.full_like(first, -1), first)

    def inputs(self, first_frame: int | torch.Tensor) -> MemoryInputs:
        """The bank as the model reads it, with frame numbers relative to `first_frame` (the
        number of the first clean frame of the pass; [B] or one int)."""
        first = torch.as_tensor(first_frame, device=self.frame.device).reshape(-1, 1)
        return MemoryInputs(self.tokens, self.frame - first, self.valid())

    def valid(self) -> torch.Tensor:
        """[B, U] bool: which slots hold a unit (rows fill slots 0, 1, ... in order)."""
        return torch.arange(self.capacity, device=self.frame.device)[None] < self.count[:, None]

    def copy(self) -> "MemoryBank":
        other = MemoryBank.__new__(MemoryBank)
        other.capacity, other.rule, other.stride = self.capacity, self.rule, self.stride
        other.tokens, other.frame, other.count = self.tokens.clone(), self.frame.clone(), self.count.clone()
        return other

    @classmethod
    def holding(cls, mem: MemoryInputs, rule: str = "recency", stride: int = 1) -> "MemoryBank":
        """A bank holding what `mem` holds (frame numbers as given), for a stream that starts at
        frame number -1 (its first context frame 0)."""
        B, U, m, P = mem.tokens.shape
        bank = cls(B, U, m, P, rule, stride, device=mem.tokens.device, dtype=mem.tokens.dtype)
        bank.tokens, bank.frame = mem.tokens.clone(), mem.frame.clone()
        bank.count = mem.valid.sum(1)
        return bank

    @classmethod
    def stack(cls, banks: list["MemoryBank"]) -> "MemoryBank":
        """Row-wise concatenation of banks with the same capacity, rule and stride."""
        out = banks[0].copy()
        out.tokens = torch.cat([b.tokens for b in banks])
        out.frame = torch.cat([b.frame for b in banks])
        out.count = torch.cat([b.count for b in banks])
        return out


def bank_of_prefix(video: torch.Tensor, capacity: int, patch: int, rule: str = "recency", stride: int = 1) -> MemoryBank:
    """The bank (B = 1) of a stream whose frames numbered 0..T-1 (video [T, C, h, w]) have all left
    its window, each offered in order as a stream offers them: what training reads for a clip and
    where evaluation's rollouts start. (A recorded episode's frames 1..e are numbered 0..e-1.)"""
    m, P = unit_shape(tuple(video.shape[1:]), patch)
    bank = MemoryBank(1, capacity, m, P, rule, stride, device=video.device, dtype=video.dtype)
    frames = list(range(0, video.shape[0], stride))
    if rule == "recency":  # first in, first out: only the last `capacity` candidates can remain
        frames = frames[-capacity:]
    for f in frames:
        bank.add(f, summarize(video[f:f + 1], patch))
    return bank
