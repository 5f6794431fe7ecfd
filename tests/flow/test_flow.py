import math

import pytest
import torch

from liveworld.flow import (grid_t, guided, interpolate, logit_normal_t, sample, shortcut_levels, shortcut_target, time_grid,
                            velocity_target, x0_from_velocity)


def test_path_endpoints_and_target():
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(interpolate(x0, eps, torch.tensor(0.0)), x0)
    assert torch.equal(interpolate(x0, eps, torch.tensor(1.0)), eps)
    t = torch.rand(4, 1)
    xt = interpolate(x0, eps, t)
    assert torch.allclose(x0_from_velocity(xt, velocity_target(x0, eps), t), x0, atol=1e-6)


def test_one_step_of_the_exact_denoiser_lands_on_the_data():
    x0, eps = torch.randn(8), torch.randn(8)
    for steps in (1, 2, 4):
        out = sample(lambda x, t, d: x0, eps, steps=steps)  # the straight path's denoiser is x0 everywhere
        assert torch.allclose(out, x0, atol=1e-6)


def as_denoiser(velocity):
    """A velocity field dx/dt = v(x, t) as the solvers' denoiser: x̂_0 = x - t v."""
    return lambda x, t, d: x - t * velocity(x, t)


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2)])
def test_solver_order_on_a_curved_flow(solver, order):
    # dx/dt = x  => x(0) = x(1) / e
    exact = torch.tensor([1.0 / math.e])
    errs = [(sample(as_denoiser(lambda x, t: x), torch.tensor([1.0]), n, solver) - exact).abs().item() for n in (8, 16)]
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


def test_solvers_feed_the_step_size_they_take():
    seen = []

    def denoise(x, t, d):
        seen.append((t, d))
        return x * 0

    sample(denoise, torch.ones(2), steps=4, min_step=1 / 8)
    assert seen == [(1.0, 0.25), (0.75, 0.25), (0.5, 0.25), (0.25, 0.25)]
    seen.clear()
    sample(denoise, torch.ones(2), steps=16, min_step=1 / 8)  # finer than trained: the smallest trained step
    assert {d for _, d in seen} == {1 / 8}
    seen.clear()
    sample(denoise, torch.ones(2), steps=2, min_step=0.0)  # a model trained without d is fed d = 0
    assert {d for _, d in seen} == {0.0}


def test_shortcut_target_of_a_consistent_denoiser_is_its_own_estimate():
    """For the straight path (denoiser = x0 everywhere) two half steps equal one full step, so
    the target is the estimate itself; for a curved flow it differs from one step's estimate."""
    x0, x = torch.randn(5), torch.randn(5)
    t, d = torch.tensor(1.0), torch.tensor(0.5)
    assert torch.allclose(shortcut_target(lambda x_, t_, d_: x0, x, t, d), x0, atol=1e-6)
    curved = as_denoiser(lambda x_, t_: x_)
    tgt = shortcut_target(curved, x, t, torch.tensor(1.0))
    two_steps = sample(curved, x, steps=2)  # from t = 1 with steps of 0.5, landing at t = 0
    assert torch.allclose(tgt, two_steps, atol=1e-6)  # one step of 1 with this estimate lands there too
    assert not torch.allclose(tgt, curved(x, 1.0, 1.0), atol=1e-3)


def test_levels_and_grid_times():
    assert shortcut_levels(8) == [1.0, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError):
        shortcut_levels(6)
    d = torch.full((4000,), 0.25)
    t = grid_t(d, torch.Generator().manual_seed(0))
    assert set(t.tolist()) == {0.25, 0.5, 0.75, 1.0}
    assert torch.equal(grid_t(torch.ones(10)), torch.ones(10))  # one step: always t = 1


def test_guidance_combination():
    cond, no_text, no_action = torch.randn(3, 2, 4).unbind(0)
    assert torch.equal(guided(cond, [no_text, no_action], torch.ones(2, 2)), cond)
    w = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    out = guided(cond, [no_text, no_action], w)
    assert torch.allclose(out[0], 2 * cond[0] - no_text[0])
    assert torch.allclose(out[1], cond[1] + 2 * (cond[1] - no_action[1]))
