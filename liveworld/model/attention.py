"""Attention for every pass of the model: dense, with the memory read sparsely.

Frames attend densely to their text and window. The memory (model/memory.py) can hold hundreds
of units; a frame being made reads only the `top_k` units whose mean key best matches its mean
query, per head (a block-sparse read, with a cheap score: one dot product a unit):

    score(unit u, head h) = mean_queries(q_h) . mean_keys_of_u(k_h)

The selection is the same computation wherever the pass runs: where one frame reads (the
engine's passes), the chosen units' keys are gathered (fewer keys: the speed-up); where several
do (training, the reference sampler), the others are masked (the same result). Scores use rotated queries and keys, so they depend only on relative
positions, like attention itself.

Shape legend: B batch, H heads, Lq queries, Lk keys, Dh head width, U units of m tokens, K = top_k.

On GPU, torch's FlexAttention could run the masked form with block masks; this CPU build runs
PyTorch's scaled_dot_product_attention on the gathered keys. Knows tensors and rows; nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class MemoryRead:
    """Where a pass's memory keys are and which queries read them.

    key_start: the first key row of the units; units, tokens: U and m; query_blocks: (row, count)
    of each frame whose queries read the memory (one selection per block); top_k: units each
    block reads per head (0 or >= units: all of them, dense)."""

    key_start: int
    units: int
    tokens: int
    query_blocks: tuple[tuple[int, int], ...]
    top_k: int
    # Per layer, the units' mean keys [B, H, U, Dh] in key order, kept by the engine's cache as
    # units enter the bank (keys never change afterwards); None: computed from the keys here.
    mean_keys: tuple[torch.Tensor, ...] | None = None
    layer: int = 0  # which of mean_keys a pass of one layer uses (Block sets it)
    # True when each query row sees either all held units or none (the engine's passes: a frame
    # being made reads the bank, a frame being written does not): the gathered keys' mask is
    # then one column per row, the same for every head, and the mask stays 2D.
    rows_see_all: bool = False

    @property
    def sparse(self) -> bool:
        return 0 < self.top_k < self.units

    @property
    def key_rows(self) -> slice:
        return slice(self.key_start, self.key_start + self.units * self.tokens)


def select_units(q: torch.Tensor, k: torch.Tensor, read: MemoryRead, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The top-k units of each query block, per head: [B, H, blocks, K]. valid [B, U] (None: all)."""
    B, H = q.shape[:2]
    if read.mean_keys is not None:
        km = read.mean_keys[read.layer]
    else:
        km = k[:, :, read.key_rows].reshape(B, H, read.units, read.tokens, -1).mean(3)  # [B, H, U, Dh]
    qm = torch.stack([q[:, :, r:r + n].mean(2) for r, n in read.query_blocks], 2)  # [B, H, blocks, Dh]
    score = qm @ km.transpose(-1, -2)  # [B, H, blocks, U]
    if valid is not None:
        score = score.masked_fill(~valid[:, None, None, :], float("-inf"))
    return score.topk(read.top_k, -1).indices


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
           read: MemoryRead | None = None) -> torch.Tensor:
    """softmax(q k^T) v with `mask` (bool, broadcastable to [B, H, Lq, Lk]; True = may attend),
    the memory read sparsely when `read` says so. -> [B, H, Lq, Dh]."""
    if read is None or not read.sparse:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    B, H, Lq, _ = q.shape
    if mask is not None and mask.dim() == 2:
        mask = mask[None, None]
    valid = None
    if mask is not None:  # a unit is valid if the first reading query may see its first token
        r0 = read.query_blocks[0][0]
        cols = torch.arange(read.units, device=q.device) * read.tokens + read.key_start
        valid = mask.expand(B, -1, -1, -1)[:, 0, r0, cols]
    sel = select_units(q, k, read, valid)  # [B, H, blocks, K]
    one = len(read.query_blocks) == 1
    if one and (mask is not None or read.query_blocks[0] == (0, Lq)):
        # one block reads (the other rows' mask hides the memory from them): gather its units
        rows = (sel[:, :, 0, :, None] * read.tokens + torch.arange(read.tokens, device=q.device)).flatten(2)  # [B, H, K*m]
        rows = rows + read.key_start
        idx = rows[..., None].expand(-1, -1, -1, k.shape[-1])
        ks, vs = k[:, :, :read.key_start], v[:, :, :read.key_start]
        ke, ve = k[:, :, read.key_rows.stop:], v[:, :, read.key_rows.stop:]
        kk = torch.cat([ks, k.gather(2, idx), ke], 2)
        vv = torch.cat([vs, v.gather(2, idx), ve], 2)
        m = None
        if mask is not None and read.rows_see_all and mask.dim() == 4 and mask.shape[:2] == (1, 1):
            row = mask[0, 0, :, read.key_start:read.key_start + 1]  # [Lq, 1]: does this row read the bank
            m = torch.cat([mask[0, 0, :, :read.key_start], row.expand(Lq, rows.shape[-1]), mask[0, 0, :, read.key_rows.stop:]], 1)
        elif mask is not None:
            mm = mask.expand(B, H, Lq, -1)
            mcols = torch.cat([mm[..., :read.key_start], mm.gather(3, rows[:, :, None, :].expand(-1, -1, Lq, -1)),
                               mm[..., read.key_rows.stop:]], 3)
            m = mcols
        return F.scaled_dot_product_attention(q, kk, vv, attn_mask=m)
    # the masked form: each block's queries see only its chosen units' keys
    Lk = k.shape[2]
    full = (mask if mask is not None else torch.ones(1, 1, Lq, Lk, dtype=torch.bool, device=q.device)).expand(B, H, Lq, Lk).clone()
    unit_of_key = torch.full((Lk,), -1, dtype=torch.long, device=q.device)
    unit_of_key[read.key_rows] = torch.arange(read.units, device=q.device).repeat_interleave(read.tokens)
    is_memory = unit_of_key >= 0
    for b, (r, n) in enumerate(read.query_blocks):
        chosen = torch.zeros(B, H, read.units + 1, dtype=torch.bool, device=q.device)
        chosen.scatter_(2, sel[:, :, b], True)
        keep = chosen[:, :, unit_of_key.clamp(min=0)] | ~is_memory  # [B, H, Lk]
        full[:, :, r:r + n] &= keep[:, :, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=full)
