"""Trajectory folding by self-consistency: the shortcut target (Frans et al. 2024, "One Step
Diffusion via Shortcut Models", Eq. 5), written for a denoiser.

A model that takes the step size d learns that one step of 2d lands where two steps of d land.
With the Euler step of liveworld/flow/solvers.py, two steps of d from x_t reach x_{t-2d}; the
clean estimate that makes ONE step of 2d from x_t land there is

    x̂_0* = x_t - t (x_t - x_{t-2d}) / (2d),

the regression target for denoise(x_t, t, 2d). The smallest step is trained by plain flow
matching (its target is the data), so every level bootstraps from the one below.
Pure math: `denoise` is any function; the caller decides its weights and gradients.
"""

from __future__ import annotations

from typing import Callable

import torch

# denoise(x, t, d) with t, d tensors broadcastable to x
TensorDenoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def euler_to(x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """One Euler step along the implied velocity, t -> t_next (tensors)."""
    return x0 + (t_next / t) * (x - x0)


def shortcut_target(denoise: TensorDenoiser, x: torch.Tensor, t: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The clean estimate that one step of size d from (x, t) must give: two steps of d / 2.
    t, d broadcastable to x, with t >= d > 0."""
    half = d / 2
    x_mid = euler_to(x, denoise(x, t, half), t, t - half)
    x_end = euler_to(x_mid, denoise(x_mid, t - half, half), t - half, t - d)
    return x - t * (x - x_end) / d
