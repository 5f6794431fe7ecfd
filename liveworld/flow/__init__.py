"""Flow-matching math shared by training, distillation and the engine: pure functions of tensors
and a denoiser, no networks, no loops over data.

Direction, stated once: flow time t runs from t = 0 (data) to t = 1 (noise). The rectified-flow
path is the straight line x_t = (1 - t) x_0 + t ε (Liu et al. 2022; Lipman et al. 2023 with
σ_min = 0), whose velocity dx_t/dt = ε - x_0 is constant along it. Models here return the clean
estimate x̂_0 (the velocity is (x_t - x̂_0) / t); sampling integrates from t = 1 to t = 0.
"""

from liveworld.flow.guidance import GUIDANCE_CONDITIONS, guided
from liveworld.flow.paths import (grid_t, interpolate, logit_normal_t, shortcut_levels, velocity_target,
                                  x0_from_velocity)
from liveworld.flow.shortcut import euler_to, shortcut_target
from liveworld.flow.solvers import euler_step, heun_step, nfe, sample, step_size_input, time_grid

__all__ = [
    "GUIDANCE_CONDITIONS", "guided",
    "grid_t", "interpolate", "logit_normal_t", "shortcut_levels", "velocity_target", "x0_from_velocity",
    "euler_to", "shortcut_target",
    "euler_step", "heun_step", "nfe", "sample", "step_size_input", "time_grid",
]
