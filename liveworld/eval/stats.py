"""Pooled figures and their standard errors: the arithmetic every eval figure shares.

A gain in dB is 10·log10 of a ratio of POOLED mean squared errors (the mean over every scored
position, then the ratio), never a mean of per-frame dB: a frame pair that happens to be
identical (MSE 0) adds 0 to a pool instead of +100 dB to a mean, so no figure is infinite or
dominated by a handful of still frames.

Standard errors come from a cluster bootstrap: the clusters (episodes, or streams) are drawn
with replacement, every figure is recomputed from the drawn clusters' pooled sums, and the
standard deviation of those replicates is the error. Positions of one episode are correlated
(the same scene), so resampling episodes is the honest unit; with fewer than MIN_CLUSTERS
clusters an episode bootstrap says nothing, and the items themselves are resampled instead
(`se_method` says which). Fractions of independent streams take the binomial error.

Pure numpy; knows nothing about models or frames.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RESAMPLES = 1000
MIN_CLUSTERS = 5
_TINY = 1e-20


def db_ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """10·log10(num / den) with both floored at 1e-20 (so 0 / 0 is 0 dB, never NaN or inf)."""
    return 10 * np.log10(np.maximum(num, _TINY) / np.maximum(den, _TINY))


def cluster_ids(groups: np.ndarray | list) -> tuple[np.ndarray, str]:
    """The clusters a bootstrap resamples: `groups` when it holds at least MIN_CLUSTERS distinct
    values, else every item alone. -> (ids [N] in 0..G-1, what was resampled)."""
    g = np.asarray(groups)
    _, ids = np.unique(g, return_inverse=True)
    if ids.max(initial=-1) + 1 >= MIN_CLUSTERS:
        return ids, "clusters"
    return np.arange(len(g)), "items"


def bootstrap(arrays: dict[str, np.ndarray], groups: np.ndarray | list,
              stat: Callable[[dict[str, np.ndarray]], np.ndarray], resamples: int = RESAMPLES,
              seed: int = 0) -> tuple[float, float | None]:
    """A statistic of pooled sums and its cluster-bootstrap standard error.

    arrays: name -> per-item values [N, ...] (the key "n" is reserved: the item counts).
    stat: receives {name: sums over the chosen items [R, ...], "n": item counts [R]} and returns
    [R]; it is called once on the whole sample (R = 1) and once on all replicates.
    -> (value, se); se is None when there is a single cluster (nothing to resample)."""
    ids, _ = cluster_ids(groups)
    G = int(ids.max(initial=-1)) + 1
    if G == 0:
        return float("nan"), None
    sums = {k: np.zeros((G,) + np.asarray(v).shape[1:]) for k, v in arrays.items()}
    for k, v in arrays.items():
        np.add.at(sums[k], ids, np.asarray(v, np.float64))
    counts = np.bincount(ids, minlength=G).astype(np.float64)

    def at(weights: np.ndarray) -> np.ndarray:  # weights [R, G]: how often each cluster is drawn
        out = {k: np.tensordot(weights, s, axes=(1, 0)) for k, s in sums.items()}
        out["n"] = weights @ counts
        return stat(out)

    value = float(at(np.ones((1, G)))[0])
    if G < 2:
        return value, None
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(G, np.full(G, 1.0 / G), size=resamples).astype(np.float64)
    reps = at(weights)
    reps = reps[np.isfinite(reps)]
    return value, (float(reps.std(ddof=1)) if len(reps) > 1 else None)


def pooled_gain_db(base: np.ndarray, model: np.ndarray, groups: np.ndarray | list,
                   seed: int = 0) -> tuple[float, float | None]:
    """10·log10(mean base / mean model) over the same items: how much lower the model's pooled
    MSE is than the baseline's (positive: the model is better). base, model [N] or [N, H]: with
    H columns (horizons) the figure is the mean over columns of each column's pooled gain."""
    base, model = np.asarray(base, np.float64), np.asarray(model, np.float64)
    if base.shape != model.shape:
        raise ValueError(f"base and model errors must match, got {base.shape} and {model.shape}")
    if len(base) == 0:
        return float("nan"), None

    def stat(s):
        g = db_ratio(s["base"], s["model"])
        return g.reshape(len(g), -1).mean(1)

    return bootstrap({"base": base, "model": model}, groups, stat, seed=seed)


def pooled_db(mse: np.ndarray) -> float:
    """PSNR of pooled errors: -10·log10(mean MSE) (pixels in [0, 1])."""
    mse = np.asarray(mse, np.float64)
    return float(-10 * np.log10(max(mse.mean(), _TINY))) if len(mse) else float("nan")


def ratio_of_means(num: np.ndarray, num_groups: np.ndarray | list, den: np.ndarray, den_groups: np.ndarray | list | None = None,
                   seed: int = 0) -> tuple[float, float | None]:
    """mean(num) / mean(den). Paired (den_groups None: num and den are the same items, resampled
    together) or of two independent samples (each resampled by its own clusters)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if len(num) == 0 or len(den) == 0:
        return float("nan"), None
    if den_groups is None:
        return bootstrap({"a": num, "b": den}, num_groups, lambda s: s["a"] / np.maximum(s["b"], _TINY), seed=seed)
    a, a_se = bootstrap({"a": num}, num_groups, lambda s: s["a"] / s["n"], seed=seed)
    b, b_se = bootstrap({"b": den}, den_groups, lambda s: s["b"] / s["n"], seed=seed + 1)
    r = a / max(b, _TINY)
    if a_se is None and b_se is None:
        return r, None
    # delta method for a ratio of independent means
    rel = ((a_se or 0.0) / max(a, _TINY)) ** 2 + ((b_se or 0.0) / max(b, _TINY)) ** 2
    return r, float(abs(r) * np.sqrt(rel))


def fraction(hits: np.ndarray | list) -> tuple[float, float | None]:
    """The fraction of independent trials that hit, and its binomial standard error."""
    x = np.asarray(hits, np.float64)
    if len(x) == 0:
        return float("nan"), None
    p = float(x.mean())
    return p, float(np.sqrt(p * (1 - p) / len(x)))


def se_method(groups: np.ndarray | list, unit: str) -> str:
    """Words for the JSON: what a figure's standard error resampled."""
    _, how = cluster_ids(groups)
    n = len(np.unique(np.asarray(groups)))
    if how == "clusters":
        return f"bootstrap over {n} {unit} ({RESAMPLES} resamples)"
    return f"bootstrap over items ({n} {unit}, fewer than {MIN_CLUSTERS}; {RESAMPLES} resamples)"
