import math

import pytest
import torch

from liveworld.flow import interpolate, logit_normal_t, sample, time_grid, velocity_target, x0_from_velocity


def test_path_endpoints_and_target():
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(interpolate(x0, eps, torch.tensor(0.0)), x0)
    assert torch.equal(interpolate(x0, eps, torch.tensor(1.0)), eps)
    t = torch.rand(4, 1)
    xt = interpolate(x0, eps, t)
    assert torch.allclose(x0_from_velocity(xt, velocity_target(x0, eps), t), x0, atol=1e-6)


def test_one_euler_step_is_exact_for_the_true_straight_velocity():
    x0, eps = torch.randn(8), torch.randn(8)
    out = sample(lambda x, t, d: eps - x0, eps, steps=1)
    assert torch.allclose(out, x0, atol=1e-6)


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2)])
def test_solver_order_on_a_curved_flow(solver, order):
    # dx/dt = x  => x(0) = x(1) / e
    exact = torch.tensor([1.0 / math.e])
    errs = [(sample(lambda x, t, d: x, torch.tensor([1.0]), n, solver) - exact).abs().item() for n in (8, 16)]
    assert errs[1] < errs[0]
    assert errs[0] / errs[1] == pytest.approx(2**order, rel=0.25)


def test_time_grid_and_logit_normal():
    assert time_grid(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    g = time_grid(4, shift=3.0)
    assert g[0] == 1.0 and g[-1] == 0.0 and g[2] > 0.5
    t = logit_normal_t((10000,), generator=torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1 and abs(t.median().item() - 0.5) < 0.02
    with pytest.raises(ValueError):
        time_grid(0)
