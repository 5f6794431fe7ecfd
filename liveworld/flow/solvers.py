"""ODE solvers for the flow: integrate from t = 1 (noise) down to t = 0 (data).

The contract (k-diffusion's, with flow time): `denoise(x, t, d) -> x̂_0`, any function that
returns the model's clean estimate at flow time t, given the step size d the sampler is about
to take (a shortcut model takes d as input; a plain flow model is fed whatever it was trained
with). The implied velocity is v = (x - x̂_0) / t, so an Euler step from t to t' is

    x' = x + (t' - t) v = x̂_0 + (t' / t) (x - x̂_0),

and the last step (t' = 0) returns x̂_0 itself. The samplers are pure functions; engine, eval,
training rollouts and tests all call `sample`, so they feed the model the same (t, d).
"""

from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, float, float], torch.Tensor]


def time_grid(steps: int, shift: float = 1.0) -> list[float]:
    """`steps + 1` times from 1 to 0. shift > 1 spends more steps near the noise end
    (t' = s t / (1 + (s - 1) t), SD3 Eq. 23); shift = 1 is uniform, the grid a shortcut model
    is trained on."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    ts = torch.linspace(1.0, 0.0, steps + 1)
    ts = shift * ts / (1 + (shift - 1) * ts)
    return [float(t) for t in ts]


def step_size_input(t: float, t_next: float, min_step: float) -> float:
    """The d a model is fed for the step t -> t_next: 0 for a model trained without step sizes
    (min_step = 0), else the step, floored at the smallest trained step (which flow matching
    trained: the d -> 0 limit)."""
    if min_step <= 0:
        return 0.0
    return max(t - t_next, min_step)


def euler_step(denoise: Denoiser, x: torch.Tensor, t: float, t_next: float, min_step: float = 0.0) -> torch.Tensor:
    x0 = denoise(x, t, step_size_input(t, t_next, min_step))
    return x0 + (t_next / t) * (x - x0)


def heun_step(denoise: Denoiser, x: torch.Tensor, t: float, t_next: float, min_step: float = 0.0) -> torch.Tensor:
    """Heun's second-order step (EDM, Karras et al. 2022, Alg. 1); Euler on the last step to t = 0."""
    d = step_size_input(t, t_next, min_step)
    x0 = denoise(x, t, d)
    if t_next == 0:
        return x0
    v = (x - x0) / t
    x_euler = x + (t_next - t) * v
    v_next = (x_euler - denoise(x_euler, t_next, d)) / t_next
    return x + (t_next - t) * 0.5 * (v + v_next)


SOLVERS = {"euler": euler_step, "heun": heun_step}


def sample(denoise: Denoiser, noise: torch.Tensor, steps: int, solver: str = "euler", shift: float = 1.0,
           min_step: float = 0.0) -> torch.Tensor:
    """x_0 from x_1 = noise in `steps` steps of `solver` ("euler" | "heun")."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
    step = SOLVERS[solver]
    ts = time_grid(steps, shift)
    x = noise
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = step(denoise, x, t, t_next, min_step)
    return x


def nfe(steps: int, solver: str = "euler") -> int:
    """Network evaluations of `sample`: Heun evaluates twice per step except the last."""
    return steps if solver == "euler" else 2 * steps - 1
