"""Rectified-flow path, its targets, and how training draws flow times.

t = 0 is data, t = 1 is noise (see liveworld/flow/__init__.py). Shapes: x0, noise [B, ...];
t broadcastable to x0 (e.g. [B, F, 1, 1, 1] for per-frame times).
"""

from __future__ import annotations

import torch


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t ε: the straight path between data and noise."""
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """dx_t/dt along the straight path: ε - x_0, the same for every t."""
    return noise - x0


def x0_from_velocity(xt: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The data estimate implied by a velocity: x_0 = x_t - t v (one Euler step to t = 0)."""
    return xt - t * v


def logit_normal_t(shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0,
                   generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """t = sigmoid(u), u ~ N(mean, std): puts the training signal on the middle of the path,
    where the velocity is hardest to predict (Esser et al. 2024, SD3, Sec. 3.1)."""
    u = torch.randn(shape, generator=generator, device=device) * std + mean
    return torch.sigmoid(u)
