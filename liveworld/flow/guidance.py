"""Classifier-free guidance with one scale per condition (Ho & Salimans 2022; the compositional
form of Liu et al. 2022 / InstructPix2Pix, Brooks et al. 2023, Eq. 3), on clean estimates.

    x̂ = x̂_c + Σ_k (w_k - 1) (x̂_c - x̂_{c without k})

w_k = 1 for every k is the plain conditional estimate. Because a step is linear in x̂_0, guiding
x̂_0 is guiding the velocity. A guidance-distilled model takes w as input and reproduces x̂ in
one pass (Meng et al. 2023). Pure math, no networks.
"""

from __future__ import annotations

import torch

GUIDANCE_CONDITIONS = ("text", "action")  # the order of the model's guidance vector w [B, G]


def guided(cond: torch.Tensor, without: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """cond [B, ...]; without[k] [B, ...] the estimate with condition k dropped; w [B, K]."""
    out = cond
    for k, x in enumerate(without):
        wk = w[:, k].reshape(-1, *([1] * (cond.ndim - 1))).to(cond.dtype)
        out = out + (wk - 1) * (cond - x)
    return out
