"""Flow-matching math shared by training, distillation and the engine: pure functions of tensors
and a velocity function, no networks, no loops over data.

Direction, stated once: flow time t runs from t = 0 (data) to t = 1 (noise). The rectified-flow
path is the straight line x_t = (1 - t) x_0 + t ε (Liu et al. 2022; Lipman et al. 2023 with
σ_min = 0), whose velocity dx_t/dt = ε - x_0 is the regression target. Sampling integrates from
t = 1 to t = 0.
"""

from liveworld.flow.paths import interpolate, logit_normal_t, velocity_target, x0_from_velocity
from liveworld.flow.solvers import euler_step, heun_step, sample, time_grid

__all__ = [
    "interpolate", "logit_normal_t", "velocity_target", "x0_from_velocity",
    "euler_step", "heun_step", "sample", "time_grid",
]
