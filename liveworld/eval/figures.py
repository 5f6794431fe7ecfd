"""The world-model figures of `liveworld eval`, each from real pixels of held-out episodes.

Errors are MSE of frames in [0, 1] at the world's size against the REAL frames (area-resized
recordings), not against autoencoder reconstructions; gains are 10·log10 of ratios of pooled
MSE (eval/stats.py), so identical consecutive frames count as an error of 0, never +100 dB.
Every figure that is a mean has a `_se` twin (eval/stats.py: bootstrap over episodes, or
streams; binomial for fractions of streams).

teacher-forced, one step ahead from the real history, N positions (`teacher_forced`):
    next_frame_gain_db   10·log10(MSE copy-last / MSE model): copy-last is the real frame t-1
    action_effect_db     10·log10(MSE with an alternative action / MSE with the true action),
                         the SAME starting noise for both; the alternative is the action of a
                         random other position that differs from the true one (positions where
                         none differs do not count)
    turn_swap_db         the same with the true action's two turn columns swapped (Doom's
                         TURN_LEFT / TURN_RIGHT, a grid world's left / right), on the positions
                         where exactly one of them is pressed; None for a world without turns
    text_delta_psnr_db   (with a contrast text) the same with another world's text
rollouts, autoregressive from real history with the recorded actions (`rollout_figures`):
    rollout_minus_hold_db[h]   10·log10(MSE holding frame t-1 / MSE rollout) at horizon h
                         (the h-th generated frame, frame t+h-1), h = 8 and 32
    rollout_action_effect_db   the mean over horizons 1..8 of 10·log10(MSE with another
                         episode's actions / MSE with the true ones), the same noise at every
                         step for both rollouts
    edge_ratio[1], [32]  mean |∇| of generated frames at that horizon / that of the real frames
streams, 1,000 frames of random keys (the engine's `--actions random`) from real history
(`stream_figures`):
    edge_ratio[last100]  mean |∇| of the streams' last 100 frames / that of all real frames
    world_kept_at_1000   the fraction of streams whose last frame eval/identity.py assigns to
                         the world they started in
    in_range_last100     the fraction of streams of which at least half of the last 100 frames
                         have pixel mean and std inside the 1st-99th percentile of the real
                         frames' per-frame mean and std (in_range_real: the same rule on every
                         non-overlapping 100-frame window of the real episodes)

Knows metrics, the sampler's runs (eval/rollout.py) and the episodes; knows nothing about training.
"""

from __future__ import annotations

import numpy as np
import torch

from liveworld.eval import identity
from liveworld.eval.episodes import EncodedEpisode, history_length, stream_actions
from liveworld.eval.metrics import (
    edge_energy,
    log_spectral_distance_db,
    mse,
    nearest_real,
    pixel_stats,
    ssim,
)
from liveworld.eval.rollout import Sampling, decode, draw, predict, rollout
from liveworld.eval.stats import fraction, pooled_db, pooled_gain_db, ratio_of_means

TURN_PAIRS = (("TURN_LEFT", "TURN_RIGHT"), ("left", "right"))  # Atari's LEFT / RIGHT move a paddle: no turn
HORIZONS = (1, 8, 32)  # rollout PSNR is reported at these; minus-hold at 8 and 32; edges at 1 and 32
ACTION_HORIZON = 8  # the rollout action effect averages horizons 1..8
TAIL = 100  # the last frames of a stream that its figures read
# of the tail's frames inside the real range, for a stream to count as in range: with 0.9, 16%
# of real 100-frame Doom windows failed (a dark corridor is out of range for a while); with a
# half, every real window passes and a blur (pixel std 0.055, real 1st percentile 0.071) fails
IN_RANGE_SHARE = 0.5


def _rounded(x: float | None, nd: int | None = None) -> float | None:
    """A plain float (None for a figure that could not be measured); figures stay unrounded
    here (paired comparisons are tested to 1e-6) and `nd` is for display-only values."""
    if x is None or not np.isfinite(x):
        return None
    return float(x) if nd is None else round(float(x), nd)


def _with_se(out: dict, key: str, value_se: tuple[float, float | None]) -> None:
    out[key], out[key + "_se"] = _rounded(value_se[0]), _rounded(value_se[1])


def turn_columns(tok) -> tuple[int, int] | None:
    """The action-vector columns of the world's two turns (TURN_PAIRS), or None."""
    names = tok.action_space.names
    for left, right in TURN_PAIRS:
        if left in names and right in names:
            cols = [int(tok.actions.encode(tok.actions.from_names([n])[None]).argmax()) for n in (left, right)]
            return cols[0], cols[1]
    return None


def alternatives(actions: torch.Tensor, rng: np.random.Generator, prefer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each row of actions [N, ...], a random other row whose actions differ from it (among
    the rows `prefer` [N, N] allows when one of those differs). -> (index [N], found [N] bool)."""
    flat = actions.reshape(len(actions), -1)
    differs = (flat[:, None] != flat[None]).any(-1).numpy()
    cand = differs
    if prefer is not None:
        cand = np.where((differs & prefer).any(1, keepdims=True), differs & prefer, differs)
    keys = rng.random(cand.shape)
    keys[~cand] = np.inf
    return keys.argmin(1), cand.any(1)


def _frames_at(eps: list[EncodedEpisode], pos: list[tuple[int, int]], shift: int = 0) -> torch.Tensor:
    return torch.stack([eps[e].frames[t + shift] for e, t in pos])


@torch.no_grad()
def teacher_forced(model, tok, sampling: Sampling, eps: list[EncodedEpisode], pos: list[tuple[int, int]],
                   gen: torch.Generator, rng: np.random.Generator, contrast_text: str | None = None, seed: int = 0) -> dict:
    """The one-step-ahead figures (module docstring) at positions (episode, t), t >= 1."""
    groups = np.array([e for e, _ in pos])
    act = torch.stack([eps[e].action[t] for e, t in pos])
    noise = draw(model, eps, len(pos), 1, gen)
    real, prev = _frames_at(eps, pos), _frames_at(eps, pos, -1)

    def errors(idx: np.ndarray, actions: torch.Tensor, text=None) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
        sub = [pos[i] for i in idx]
        v, a = predict(model, sampling, eps, sub, actions, noise[idx], text)
        pred = decode(tok, v)
        return mse(pred, real[idx]).numpy(), pred, a

    every = np.arange(len(pos))
    m_model, pred, audio = errors(every, act)
    m_copy = mse(prev, real).numpy()
    ae = decode(tok, torch.stack([eps[e].video[t] for e, t in pos]))
    out = {"positions": len(pos)}
    _with_se(out, "next_frame_gain_db", pooled_gain_db(m_copy, m_model, groups, seed))
    out.update({"next_frame_psnr_db": _rounded(pooled_db(m_model), 2), "copy_last_psnr_db": _rounded(pooled_db(m_copy), 2),
                "autoencoder_psnr_db": _rounded(pooled_db(mse(ae, real).numpy()), 2),
                "next_frame_ssim": _rounded(ssim(pred, real).mean().item(), 4),
                "identical_consecutive_frames": int((m_copy == 0).sum())})

    # the true action against another position's (that differs), the same noise
    j, ok = alternatives(act, rng)
    idx = every[ok]
    base = m_model if ok.all() else errors(idx, act[idx])[0]  # the same rows in the same passes
    m_alt = errors(idx, act[j[idx]])[0] if len(idx) else np.zeros(0)
    _with_se(out, "action_effect_db", pooled_gain_db(m_alt, base, groups[idx], seed) if len(idx) else (float("nan"), None))
    out["action_effect_positions"] = len(idx)

    cols = turn_columns(tok)
    if cols is None:
        out.update({"turn_swap_db": None, "turn_swap_db_se": None, "turn_swap_positions": 0})
    else:
        left, right = act[:, cols[0]] > 0.5, act[:, cols[1]] > 0.5
        idx = every[(left ^ right).numpy()]
        if len(idx):
            swapped = act[idx].clone()
            swapped[:, [cols[0], cols[1]]] = act[idx][:, [cols[1], cols[0]]]
            m_true, m_swap = errors(idx, act[idx])[0], errors(idx, swapped)[0]
            _with_se(out, "turn_swap_db", pooled_gain_db(m_swap, m_true, groups[idx], seed))
        else:
            out.update({"turn_swap_db": None, "turn_swap_db_se": None})
        out["turn_swap_positions"] = len(idx)

    if contrast_text is not None:
        other = tok.text_ids([contrast_text], model.cfg.text_len)
        m_other = errors(every, act, other)[0]
        _with_se(out, "text_delta_psnr_db", pooled_gain_db(m_other, m_model, groups, seed))
        out["contrast_text"] = contrast_text

    if audio is not None and eps[0].audio_wave is not None:
        O, S = tok.audio.cfg.overlap, tok.audio.cfg.samples_per_frame
        wav = tok.audio.decode(audio).clamp(-1, 1)[..., O:O + S]  # the frame's own samples of its window
        real_w = torch.stack([eps[e].audio_wave[t] for e, t in pos])
        prev_w = torch.stack([eps[e].audio_wave[t - 1] for e, t in pos])
        out["audio_lsd_db"] = _rounded(log_spectral_distance_db(wav, real_w).mean().item(), 2)
        out["audio_lsd_copy_last_db"] = _rounded(log_spectral_distance_db(prev_w, real_w).mean().item(), 2)
    return out


def rollout_starts(eps: list[EncodedEpisode], L: int, horizon: int, count: int,
                   rng: np.random.Generator) -> tuple[list[tuple[int, int]], int]:
    """Up to `count` distinct random starts (episode, t) with a full real history of L frames
    before them and H real frames from them, H = `horizon` or the longest the episodes allow.
    -> (starts, H); no starts when no episode has L + 1 frames."""
    H = min(horizon, max((len(ep) - L for ep in eps), default=0))
    if H < 1:
        return [], 0
    cands = [(e, t) for e, ep in enumerate(eps) for t in range(L, len(ep) - H + 1)]
    pick = rng.choice(len(cands), size=min(count, len(cands)), replace=False)
    return [cands[i] for i in sorted(pick)], H


@torch.no_grad()
def rollout_figures(model, tok, sampling: Sampling, eps: list[EncodedEpisode], starts: list[tuple[int, int]], H: int,
                    gen: torch.Generator, rng: np.random.Generator, seed: int = 0) -> tuple[dict, dict]:
    """The rollout figures (module docstring) from `starts`, H frames each. -> (figures, the
    runs: "frames" [S, H, 3, H, W], "audio" latents [S, H, Na, Ca] or None, "actions" [S, H, A],
    "psnr" and "hold" [H] pooled PSNR by horizon)."""
    groups = np.array([e for e, _ in starts])
    act = torch.stack([eps[e].action[t: t + H] for e, t in starts])
    noise = draw(model, eps, len(starts), H, gen)
    video, audio = rollout(model, sampling, eps, starts, act, noise)
    gen_f = decode(tok, video)
    real = torch.stack([eps[e].frames[t: t + H] for e, t in starts])
    held = _frames_at(eps, starts, -1)
    S = len(starts)
    m_roll = mse(gen_f.flatten(0, 1), real.flatten(0, 1)).view(S, H).numpy()
    m_hold = mse(held[:, None].expand_as(real).flatten(0, 1), real.flatten(0, 1)).view(S, H).numpy()
    out = {"rollout_starts": S, "rollout_horizon": H,
           "rollout_psnr_db": {str(h): _rounded(pooled_db(m_roll[:, h - 1]), 2) for h in HORIZONS if h <= H},
           "hold_psnr_db": {str(h): _rounded(pooled_db(m_hold[:, h - 1]), 2) for h in HORIZONS if h <= H}}
    out["rollout_minus_hold_db"], out["rollout_minus_hold_db_se"] = {}, {}
    for h in (8, 32):
        v, se = pooled_gain_db(m_hold[:, h - 1], m_roll[:, h - 1], groups, seed) if h <= H else (None, None)
        out["rollout_minus_hold_db"][str(h)], out["rollout_minus_hold_db_se"][str(h)] = _rounded(v), _rounded(se)
    out["edge_ratio"], out["edge_ratio_se"] = {}, {}
    for h in (1, 32):
        v, se = ratio_of_means(edge_energy(gen_f[:, h - 1]).numpy(), groups, edge_energy(real[:, h - 1]).numpy(),
                               seed=seed) if h <= H else (None, None)
        out["edge_ratio"][str(h)], out["edge_ratio_se"][str(h)] = _rounded(v), _rounded(se)

    # true actions against another episode's (another start's when there is one episode), the
    # same noise at every step: rows and passes as in the true run, so its first Ha steps recur
    Ha = min(ACTION_HORIZON, H)
    other_episode = groups[:, None] != groups[None]
    j, ok = alternatives(act[:, :Ha], rng, prefer=other_episode)
    idx = np.flatnonzero(ok)
    if len(idx):
        sub = [starts[i] for i in idx]
        base = m_roll[:, :Ha] if ok.all() else _rollout_errors(model, tok, sampling, eps, sub, act[idx, :Ha], noise[idx, :Ha], real[idx, :Ha])
        m_alt = _rollout_errors(model, tok, sampling, eps, sub, act[j[idx], :Ha], noise[idx, :Ha], real[idx, :Ha])
        _with_se(out, "rollout_action_effect_db", pooled_gain_db(m_alt, base, groups[idx], seed))
    else:
        out.update({"rollout_action_effect_db": None, "rollout_action_effect_db_se": None})
    out["rollout_action_effect_starts"] = len(idx)
    psnr = [pooled_db(m_roll[:, h]) for h in range(H)]
    hold = [pooled_db(m_hold[:, h]) for h in range(H)]
    return out, {"frames": gen_f, "audio": audio, "actions": act, "psnr": psnr, "hold": hold}


def _rollout_errors(model, tok, sampling, eps, starts, actions, noise, real) -> np.ndarray:
    """MSE [S, H] of a rollout's frames against `real` [S, H, 3, H, W]."""
    video, _ = rollout(model, sampling, eps, starts, actions, noise)
    S, H = actions.shape[:2]
    return mse(decode(tok, video).flatten(0, 1), real.flatten(0, 1)).view(S, H).numpy()


def real_range(eps: list[EncodedEpisode]) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1st and 99th percentiles [2] of the real frames' per-frame (pixel mean, pixel std)."""
    s = pixel_stats(torch.cat([ep.frames for ep in eps]))
    x = torch.stack([s["mean"], s["std"]], -1)
    return x.quantile(0.01, 0), x.quantile(0.99, 0)


def in_range(frames: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bool:
    """At least IN_RANGE_SHARE of frames [N, 3, H, W] have pixel mean and std inside [lo, hi]."""
    s = pixel_stats(frames)
    x = torch.stack([s["mean"], s["std"]], -1)
    return bool(((x >= lo) & (x <= hi)).all(-1).float().mean() >= IN_RANGE_SHARE)


@torch.no_grad()
def stream_figures(model, tok, sampling: Sampling, eps: list[EncodedEpisode], streams: int, frames: int,
                   gen: torch.Generator, rng: np.random.Generator, classifier: identity.WorldClassifier,
                   seed: int = 0, trace: bool = False) -> tuple[dict, dict]:
    """The stream figures (module docstring): `streams` streams of `frames` frames, stream i
    from the real history before a random frame of held-out episode i mod E, its keys those
    of `liveworld play --actions random --seed SEED+i`. -> (figures, for the report: "stats"
    [frames, 3] pixel (mean, std, edges) of stream 0 and "snapshots" {frame: [3, H, W]} when
    `trace`)."""
    L = history_length(model.cfg)
    starts = []
    for i in range(streams):
        e = i % len(eps)
        n = len(eps[e])
        starts.append((e, int(rng.integers(min(L, n), n + 1))))
    actions = torch.stack([stream_actions(tok, frames, seed + i) for i in range(streams)])
    video, _ = rollout(model, sampling, eps, starts, actions, gen)
    tail = decode(tok, video[:, -TAIL:])  # [S, n, 3, H, W]
    n = tail.shape[1]
    real = torch.cat([ep.frames for ep in eps])
    real_groups = np.concatenate([np.full(len(ep), e) for e, ep in enumerate(eps)])
    out = {"streams": streams, "stream_frames": frames}
    v, se = ratio_of_means(edge_energy(tail.flatten(0, 1)).numpy(), np.repeat(np.arange(streams), n),
                           edge_energy(real).numpy(), real_groups, seed=seed)
    out["edge_ratio"], out["edge_ratio_se"] = {"last100": _rounded(v)}, {"last100": _rounded(se)}
    last = tail[:, -1]
    z_last = torch.cat([tok.video.encode(b) for b in last.split(256)])  # what the player sees, encoded as real frames are
    assigned = classifier.assign(identity.features(z_last))
    _with_se(out, "world_kept_at_1000", fraction([a == classifier.world for a in assigned]))
    out["world_assigned_at_1000"] = {name: assigned.count(name) for name in dict.fromkeys(assigned)}
    lo, hi = real_range(eps)
    _with_se(out, "in_range_last100", fraction([in_range(s, lo, hi) for s in tail]))
    windows = [ep.frames[i: i + TAIL] for ep in eps for i in range(0, max(1, len(ep) - TAIL + 1), TAIL)]
    out["in_range_real"] = _rounded(float(np.mean([in_range(w, lo, hi) for w in windows])))
    gs, rs = pixel_stats(tail.flatten(0, 1)), pixel_stats(real)
    near_gen = nearest_real(tail[:, ::10].flatten(0, 1), real)
    # the reference: real frames of one episode against the other episodes' (none with one episode)
    near_real = nearest_real(eps[0].frames[-n:], torch.cat([ep.frames for ep in eps[1:]])) if len(eps) > 1 else None
    out["stability"] = {
        "gen_mean_last100": _rounded(gs["mean"].mean().item(), 4), "gen_std_last100": _rounded(gs["std"].mean().item(), 4),
        "gen_edges_last100": _rounded(edge_energy(tail.flatten(0, 1)).mean().item(), 4),
        "real_mean": _rounded(rs["mean"].mean().item(), 4), "real_std": _rounded(rs["std"].mean().item(), 4),
        "real_edges": _rounded(edge_energy(real).mean().item(), 4),
        "nearest_real_psnr_db_last100": _rounded(near_gen["psnr"].mean().item(), 2),
        "nearest_real_ssim_last100": _rounded(near_gen["ssim"].mean().item(), 4),
        "nearest_real_psnr_db_real": _rounded(near_real["psnr"].mean().item(), 2) if near_real else None,
        "nearest_real_ssim_real": _rounded(near_real["ssim"].mean().item(), 4) if near_real else None,
    }
    extra = {}
    if trace:
        whole = decode(tok, video[0])
        s = pixel_stats(whole)
        real_x = torch.stack([rs["mean"], rs["std"], edge_energy(real).float()], -1)
        extra = {"stats": torch.stack([s["mean"], s["std"], edge_energy(whole).float()], -1),
                 "lo": real_x.quantile(0.01, 0), "hi": real_x.quantile(0.99, 0),
                 "snapshots": {k: whole[k - 1] for k in (1, 10, 100, 1000) if k <= frames}}
    return out, extra
