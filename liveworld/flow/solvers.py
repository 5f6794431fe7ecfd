"""ODE solvers for the flow: integrate dx/dt = v(x, t) from t = 1 (noise) down to t = 0 (data).

`velocity(x, t, d)` is any function returning v with x's shape; t is a scalar tensor-like float
and d the step size (t_next - t is negative; d = |t_next - t| is what a shortcut model takes as
input, 0 for a plain flow model). The samplers are pure: one contract, many samplers
(k-diffusion's design).
"""

from __future__ import annotations

from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, float, float], torch.Tensor]


def time_grid(steps: int, shift: float = 1.0) -> list[float]:
    """`steps + 1` times from 1 to 0. shift > 1 spends more steps near the noise end
    (t' = s t / (1 + (s - 1) t), SD3 Eq. 23); shift = 1 is uniform."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ts = torch.linspace(1.0, 0.0, steps + 1)
    ts = shift * ts / (1 + (shift - 1) * ts)
    return [float(t) for t in ts]


def euler_step(velocity: Velocity, x: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    return x + (t_next - t) * velocity(x, t, t - t_next)


def heun_step(velocity: Velocity, x: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """Heun's second-order step (EDM, Karras et al. 2022, Alg. 1); Euler on the last step to t = 0."""
    v = velocity(x, t, t - t_next)
    x_euler = x + (t_next - t) * v
    if t_next == 0:
        return x_euler
    v_next = velocity(x_euler, t_next, t - t_next)
    return x + (t_next - t) * 0.5 * (v + v_next)


def sample(velocity: Velocity, noise: torch.Tensor, steps: int, solver: str = "euler", shift: float = 1.0) -> torch.Tensor:
    step = {"euler": euler_step, "heun": heun_step}[solver]
    ts = time_grid(steps, shift)
    x = noise
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = step(velocity, x, t, t_next)
    return x
