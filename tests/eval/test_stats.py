"""Pooled figures: identical consecutive frames score a finite copy-last figure and a known gain;
the bootstrap's error is there when clusters vary and absent for a single one."""

import math

import numpy as np
import torch

from liveworld.eval.metrics import mse
from liveworld.eval.stats import fraction, pooled_db, pooled_gain_db, ratio_of_means


def test_identical_consecutive_frames_give_a_finite_copy_last_figure_and_a_known_pooled_gain():
    g = torch.Generator().manual_seed(0)
    real = torch.rand((6, 3, 8, 10), generator=g, dtype=torch.float64)
    prev = real.clone()
    prev[2:] = (real[2:] + 0.1).clamp(0, 1)  # frames 0 and 1 did not change: copy-last is exact there
    prev[4:] = 1 - real[4:]
    offsets = torch.tensor([0.01, 0.02, 0.02, 0.03, 0.04, 0.05], dtype=torch.float64)
    pred = real + offsets.view(-1, 1, 1, 1)  # the model's error at each position is exactly offset^2
    m_copy, m_model = mse(prev, real).numpy(), mse(pred, real).numpy()
    assert (m_copy[:2] == 0).all() and np.allclose(m_model, offsets.double().numpy() ** 2)
    copy_db = pooled_db(m_copy)
    assert math.isfinite(copy_db) and copy_db == -10 * math.log10(m_copy.mean())
    gain, se = pooled_gain_db(m_copy, m_model, groups=np.arange(6))
    want = 10 * math.log10(m_copy.mean() / (offsets.double() ** 2).mean().item())
    assert math.isfinite(gain) and abs(gain - want) < 1e-9
    assert se is not None and se > 0
    # copy-last exact at every position: the pool is 0, the gain -200 dB at the floor, not NaN
    zero, _ = pooled_gain_db(np.zeros(6), m_model, groups=np.arange(6))
    assert math.isfinite(zero) and zero < -100


def test_gain_over_horizons_is_the_mean_of_each_horizons_pooled_gain():
    base = np.array([[1.0, 4.0], [3.0, 4.0]])
    model = np.array([[1.0, 1.0], [1.0, 1.0]])
    gain, se = pooled_gain_db(base, model, groups=[0, 1])  # two clusters: resampled as items
    assert abs(gain - (10 * math.log10(2) + 10 * math.log10(4)) / 2) < 1e-9
    assert se is not None


def test_one_cluster_has_no_error_and_fractions_take_the_binomial_one():
    value, se = pooled_gain_db(np.array([2.0]), np.array([1.0]), groups=[0])
    assert abs(value - 10 * math.log10(2)) < 1e-9 and se is None
    p, se = fraction([1, 1, 1, 0])
    assert p == 0.75 and abs(se - math.sqrt(0.75 * 0.25 / 4)) < 1e-12
    r, r_se = ratio_of_means(np.array([1.0, 3.0] * 5), np.arange(10), np.array([4.0] * 8), np.arange(8))
    assert abs(r - 0.5) < 1e-12 and r_se > 0
