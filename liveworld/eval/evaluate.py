"""`liveworld eval`: how good a world model is, on held-out episodes, with the recorded actions.

    teacher-forced   next-frame PSNR / SSIM from real context, beside the copy-last-frame
                     baseline and the autoencoder's own ceiling (decode(encode(real)))
    rollout          autoregressive PSNR at horizons 1, 8, 32, 128 frames, beside holding the
                     last real frame before the start (`hold_psnr_db`, the same horizons)
    controllability  PSNR at horizon 8 with the true actions minus with the actions of another
                     start (over every rollout start, 32 by default)
    audio            log-spectral distance of generated against recorded sound
    stability        pixel statistics over a 1,000-frame free rollout against real frames
    revisits         on routes that come back to a view (poses from the simulator, eval/revisit.py),
                     the return frame generated with the memory, with the window only, and the
                     view before leaving held

Every figure comes from the one reference sampler (liveworld/model/sampling.py), with the
steps, solver and guidance the JSON names; the engine's cached step equals it (tested).

A table, then one JSON line last. Frames are compared at the world's size (the recording
area-resized), against the real frames, not against autoencoder reconstructions.

Knows metrics and the sampler; knows nothing about training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date

import numpy as np
import torch

from liveworld.common import LiveworldError
from liveworld.data.arrays import resize_frames
from liveworld.data.episode import Episode
from liveworld.flow import nfe
from liveworld.model.memory import MemoryBank, bank_of_prefix
from liveworld.model.omni import OmniConfig
from liveworld.model.sampling import History, predict_next
from liveworld.eval.metrics import log_spectral_distance_db, nearest_real, pixel_stats, psnr_db, ssim
from liveworld.eval.revisit import pick_pairs
from liveworld.eval.audio import audio_figures
from liveworld.tokenizers.audio import frame_stream
from liveworld.checkpoint import read_checkpoint_meta
from liveworld.world import load_world_model, load_world_tokenizers, resolve_checkpoint, select_world

HORIZONS = (1, 8, 32, 128)


@dataclass
class EncodedEpisode:
    frames: torch.Tensor  # float [T, 3, H, W] in [0, 1], the real frames at world size
    video: torch.Tensor  # [T, C, h, w]
    action: torch.Tensor  # [T, A]
    audio: torch.Tensor | None  # [T, Na, Ca]
    audio_wave: torch.Tensor | None  # float [T, C, S] in [-1, 1]
    text: torch.Tensor  # [T, T_text]: each frame's text
    text_valid: torch.Tensor  # [T, T_text]


@torch.no_grad()
def encode_episode(ep: Episode, tok, text_len: int) -> EncodedEpisode:
    enc = tok.encode_episode(ep)  # the same tokens training reads
    frames = resize_frames(ep.frames, tok.frame_size).float() / 255
    wave = None
    if enc["audio"] is not None and ep.has_audio:  # each frame's S samples, as the codec and the player have them
        S, C = tok.audio.cfg.samples_per_frame, tok.audio.cfg.channels
        x = frame_stream(ep.audio, len(ep), S, C) / 32768
        wave = x.reshape(C, len(ep), S).transpose(0, 1).contiguous()
    ids, valid = tok.text_ids(enc["texts"], text_len)
    # a silent world's frames still carry the codec's silence: the model was trained on it
    return EncodedEpisode(frames, enc["video"], enc["action"], enc["audio"], wave, ids, valid)


def history_at(eps: list[EncodedEpisode], pos: list[tuple[int, int]], window: int, memory: OmniConfig | None = None) -> History:
    """Real history of W + 1 frames ending just before each (episode, t); the first frame of an
    episode repeats where there is not enough. With `memory` (a config with memory units), each
    stream's bank of the frames that left its window before (model/memory.py)."""
    rows = [[max(0, t - window - 1 + k) for k in range(window + 1)] for _, t in pos]
    v = torch.stack([eps[e].video[r] for (e, _), r in zip(pos, rows)])
    a = torch.stack([eps[e].action[r] for (e, _), r in zip(pos, rows)])
    au = torch.stack([eps[e].audio[r] for (e, _), r in zip(pos, rows)]) if eps[0].audio is not None else None
    if memory is None or not memory.memory_units:
        return History(v, a, au)
    # the previous-only frame is episode frame t - W - 1, numbered t - W - 2; frames 1 .. it have left
    banks = [bank_of_prefix(eps[e].video[1: max(1, t - window)], memory.memory_units, memory.memory_patch,
                            memory.memory_rule, memory.memory_stride) for e, t in pos]
    first = torch.tensor([t - window - 2 for _, t in pos])
    return History(v, a, au, MemoryBank.stack(banks), first)


def _batch_text(eps, pos):
    """The text known before each position: that of the last frame of its history."""
    return torch.stack([eps[e].text[t - 1] for e, t in pos]), torch.stack([eps[e].text_valid[t - 1] for e, t in pos])


@dataclass(frozen=True)
class Sampling:
    """How frames are sampled: the same for every figure of one evaluation."""

    steps: int = 1
    solver: str = "euler"
    guidance: float = 1.0

    def __call__(self, model, hist, action, text, valid, gen):
        w = None if self.guidance == 1.0 else torch.full((action.shape[0], model.cfg.guidance_dims), self.guidance)
        return predict_next(model, hist, action, text, valid, self.steps, self.solver, generator=gen, guidance=w)


@torch.no_grad()
def teacher_forced(model, tok, eps, window, sampling: Sampling, positions, gen, batch=16,
                   text_as: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Next-frame figures from real context; `text_as` (ids [T], valid [T]) replaces every
    position's text (another world's description: what the text is worth)."""
    out = {k: [] for k in ("psnr", "ssim", "copy", "ae", "lsd", "lsd_copy")}
    for i in range(0, len(positions), batch):
        pos = positions[i: i + batch]
        hist = history_at(eps, pos, window, model.cfg)
        text, valid = _batch_text(eps, pos)
        if text_as is not None:
            text, valid = text_as[0].expand_as(text), text_as[1].expand_as(valid)
        act = torch.stack([eps[e].action[t] for e, t in pos])
        v, a = sampling(model, hist, act, text, valid, gen)
        pred = tok.video.decode(v)
        real = torch.stack([eps[e].frames[t] for e, t in pos])
        prev = torch.stack([eps[e].frames[t - 1] for e, t in pos])
        ae = tok.video.decode(torch.stack([eps[e].video[t] for e, t in pos]))
        out["psnr"].append(psnr_db(pred, real))
        out["ssim"].append(ssim(pred, real))
        out["copy"].append(psnr_db(prev, real))
        out["ae"].append(psnr_db(ae, real))
        if a is not None and eps[0].audio_wave is not None:
            O, S = tok.audio.cfg.overlap, tok.audio.cfg.samples_per_frame
            wav = tok.audio.decode(a).clamp(-1, 1)[..., O:O + S]  # the frame's own samples of its window
            real_w = torch.stack([eps[e].audio_wave[t] for e, t in pos])
            prev_w = torch.stack([eps[e].audio_wave[t - 1] for e, t in pos])
            out["lsd"].append(log_spectral_distance_db(wav, real_w))
            out["lsd_copy"].append(log_spectral_distance_db(prev_w, real_w))
    return {k: torch.cat(v).mean().item() for k, v in out.items() if v}


@torch.no_grad()
def rollout(model, tok, eps, window, sampling: Sampling, starts, horizon, gen, actions=None, return_frames=False,
            batch: int = 32):
    """Generates `horizon` frames from real context at each (episode, t) with the recorded (or
    the given [B, horizon, A]) actions. Returns PSNR [horizon] averaged over starts, the
    hold-the-last-real-frame baseline [horizon], and the frames if asked."""
    psnr_sum, hold_sum, frames = torch.zeros(horizon), torch.zeros(horizon), []
    for i in range(0, len(starts), batch):
        part = starts[i: i + batch]
        hist = history_at(eps, part, window, model.cfg)
        text, valid = _batch_text(eps, part)
        held = torch.stack([eps[e].frames[t - 1] for e, t in part])
        out = []
        for h in range(horizon):
            act = actions[i: i + batch, h] if actions is not None else torch.stack([eps[e].action[t + h] for e, t in part])
            v, a = sampling(model, hist, act, text, valid, gen)
            hist = hist.push(v, act, a, window)
            pred = tok.video.decode(v)
            real = torch.stack([eps[e].frames[t + h] for e, t in part])
            psnr_sum[h] += psnr_db(pred, real).sum()
            hold_sum[h] += psnr_db(held, real).sum()
            if return_frames:
                out.append(pred)
        if return_frames:
            frames.append(torch.stack(out, 1))
    n = len(starts)
    return (psnr_sum / n).tolist(), (hold_sum / n).tolist(), (torch.cat(frames) if return_frames else None)


@torch.no_grad()
def revisit_rollouts(model, tok, eps, pairs: list[tuple[int, int, int]], window: int, sampling: Sampling, gen,
                     memory: bool, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """For each revisit (episode, s, t): a rollout from the real frames up to s (the view before
    leaving) with the recorded actions, to the return frame t. -> PSNR of the generated frame t
    against the real one [P], and the generated frames t [P, 3, H, W]. `memory` False runs a
    model with memory on its window alone."""
    psnr, frames = torch.zeros(len(pairs)), [None] * len(pairs)
    for i in range(0, len(pairs), batch):
        part = pairs[i: i + batch]
        starts = [(e, s + 1) for e, s, _ in part]
        hist = history_at(eps, starts, window, model.cfg if memory else None)
        text, valid = _batch_text(eps, starts)
        for h in range(max(t - s for _, s, t in part)):
            act = torch.stack([eps[e].action[min(s + 1 + h, len(eps[e].action) - 1)] for e, s, _ in part])
            v, a = sampling(model, hist, act, text, valid, gen)
            hist = hist.push(v, act, a, window)
            done = [j for j, (_, s, t) in enumerate(part) if s + 1 + h == t]
            if done:
                img = tok.video.decode(v[done])
                for k, j in enumerate(done):
                    e, _, t = part[j]
                    psnr[i + j] = psnr_db(img[k:k + 1], eps[e].frames[t][None])[0]
                    frames[i + j] = img[k]
    return psnr, torch.stack(frames)


def revisit_figures(model, tok, raw: list[Episode], window: int, sampling: Sampling, gen, min_gap: int = 32,
                    max_pairs: int = 32) -> tuple[dict, dict]:
    """revisit_psnr_db (memory on), revisit_psnr_db_no_memory (the window only) and
    revisit_hold_psnr_db (the view before leaving, held), for returns >= min_gap and >= 2 min_gap
    frames after leaving; and the frames of the report's revisit strip."""
    pairs = pick_pairs([ep.pose for ep in raw], min_gap, max_pairs)
    if not pairs:
        return {}, {}
    eps = [encode_episode(ep, tok, model.cfg.text_len) for ep in raw]
    hold = torch.stack([psnr_db(eps[e].frames[s][None], eps[e].frames[t][None])[0] for e, s, t in pairs])
    gaps = torch.tensor([t - s for _, s, t in pairs])
    runs = {"no_memory": revisit_rollouts(model, tok, eps, pairs, window, sampling, gen, memory=False)}
    if model.cfg.memory_units:
        runs["memory"] = revisit_rollouts(model, tok, eps, pairs, window, sampling, gen, memory=True)
    out = {"revisit_pairs": len(pairs), "revisit_gap_frames": {"min": int(gaps.min()), "median": int(gaps.median()), "max": int(gaps.max())}}
    for name, key in (("memory", "revisit_psnr_db"), ("no_memory", "revisit_psnr_db_no_memory"), ("hold", "revisit_hold_psnr_db")):
        values = hold if name == "hold" else runs[name][0] if name in runs else None
        if values is None:
            continue
        out[key] = {f">={g}": (round(values[gaps >= g].mean().item(), 2) if (gaps >= g).any() else None) for g in (min_gap, 2 * min_gap)}
    out["revisit_pairs_by_gap"] = {f">={g}": int((gaps >= g).sum()) for g in (min_gap, 2 * min_gap)}
    strip = {"real_before": torch.stack([eps[e].frames[s] for e, s, _ in pairs[:4]]),
             "real_return": torch.stack([eps[e].frames[t] for e, _, t in pairs[:4]])}
    for name, (_, frames) in runs.items():
        strip[name] = frames[:4]
    return out, strip


FREE_ROLLOUT_SNAPSHOTS = (1, 10, 100, 1000)


@torch.no_grad()
def free_rollout(model, tok, ep: EncodedEpisode, actions: torch.Tensor, window: int, sampling: Sampling, gen):
    """A long rollout from an episode's first frames, driven by `actions` [N, A]: pixel stats per
    frame [N, 3], the frames at FREE_ROLLOUT_SNAPSHOTS {frame number: [3, H, W]} and the last
    100 frames [100, 3, H, W]."""
    start = window + 1
    hist = history_at([ep], [(0, start)], window, model.cfg)
    text, valid = ep.text[start - 1][None], ep.text_valid[start - 1][None]
    stats, snaps, tail = [], {}, []
    for h in range(len(actions)):
        act = actions[h][None]
        v, a = sampling(model, hist, act, text, valid, gen)
        hist = hist.push(v, act, a, window)
        img = tok.video.decode(v)
        if h + 1 in FREE_ROLLOUT_SNAPSHOTS:
            snaps[h + 1] = img[0]
        if h >= len(actions) - 100:
            tail.append(img[0])
        s = pixel_stats(img)
        stats.append(torch.stack([s["mean"], s["std"], s["edges"]], -1))
    return torch.cat(stats), snaps, torch.stack(tail)


def revisit_episodes(meta: dict, data: str | None, count: int) -> tuple[list[Episode], str]:
    """Episodes with routes that come back (poses kept): a dataset recorded with `--policy
    revisit`, else fresh recordings of the world with that policy, seeds above the training
    range (and above those of `heldout_episodes`)."""
    if data:
        eps, source = heldout_episodes(meta, data, 0, 0, split="all")
        return [ep for ep in eps if ep.pose is not None], source
    from liveworld.data.record import record_episode
    from liveworld.data.worlds import make_world

    world = make_world(meta["world"]["world"])
    seed0 = 1_000_500 + (meta["world"].get("seed_range") or [0, 0])[1]
    try:
        eps = [record_episode(world, "revisit", seed0 + k, 500) for k in range(count)]
    finally:
        world.close()
    eps = [ep for ep in eps if ep.pose is not None]
    return eps, f"fresh {meta['world']['world']} revisit routes, seeds {seed0}..{seed0 + count - 1}"


def heldout_episodes(meta: dict, data: str | None, need: int, count: int, split: str = "val") -> tuple[list[Episode], str]:
    """Episodes the model never trained on: a dataset's validation split (or, with split="all",
    every episode of a dataset recorded apart from the training data), else fresh recordings
    with seeds above the training range."""
    from liveworld.data.shards import Dataset

    if data:
        ds = Dataset.open(data)
        if split not in ("val", "all"):
            raise LiveworldError(f"--split must be val or all, got {split!r}")
        ids = ds.ids() if split == "all" else (ds.ids("val") or ds.ids())
        eps = [ds.load(i) for i in ids]
        what = "" if split == "all" else ("validation " if ds.ids("val") else "")
        return eps, f"{data} ({len(eps)} {what}episodes)"
    from liveworld.data.record import record_episode
    from liveworld.data.worlds import make_world

    world = make_world(meta["world"]["world"])
    seed0 = 1_000_000 + (meta["world"].get("seed_range") or [0, 0])[1]
    eps, k = [], 0
    try:
        while len(eps) < count and k < count * 5:
            ep = record_episode(world, "explore", seed0 + k, max(need, 300))
            if len(ep) >= need:
                eps.append(ep)
            k += 1
    finally:
        world.close()
    return eps, f"fresh {meta['world']['world']} episodes, seeds {seed0}..{seed0 + k - 1} (never used for training)"


def evaluate(checkpoint: str, data: str | None = None, steps: int = 1, frames: int = 256,
             starts: int = 32, stability_frames: int = 1000, report: str | None = None, seed: int = 0,
             horizons: tuple[int, ...] = HORIZONS, guidance: float = 1.0, solver: str = "euler",
             split: str = "val", episodes: int = 12, revisit: str | None = None, revisit_count: int = 8,
             world: str | None = None, contrast_text: str | None = None, loaded: tuple | None = None) -> dict:
    """One world's figures (`world` of a checkpoint of several; default its first). With
    `contrast_text` (another world's description) also text_delta_psnr_db: the teacher-forced
    PSNR with the true text minus with that one, on the same positions and noise. `loaded`: the
    (model, meta) of `checkpoint`, already loaded."""
    t0 = time.perf_counter()
    model, meta = loaded if loaded is not None else load_world_model(checkpoint)
    meta = select_world(meta, world)
    tok = load_world_tokenizers(meta)
    sampling = Sampling(steps, solver, guidance)
    window = model.cfg.frames - 1
    max_h = max(max(horizons), 8)
    raw, source = heldout_episodes(meta, data, need=window + 2 + max_h, count=episodes, split=split)
    eps = [encode_episode(ep, tok, model.cfg.text_len) for ep in raw]
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    # teacher-forced positions spread over all episodes
    all_pos = [(e, t) for e, ep in enumerate(eps) for t in range(1, len(ep.video))]
    pick = rng.choice(len(all_pos), size=min(frames, len(all_pos)), replace=False)
    tf_pos = [all_pos[i] for i in sorted(pick)]
    tf = teacher_forced(model, tok, eps, window, sampling, tf_pos, torch.Generator().manual_seed(seed))
    tf_other = None
    if contrast_text is not None:
        other = tok.text_ids([contrast_text], model.cfg.text_len)
        tf_other = teacher_forced(model, tok, eps, window, sampling, tf_pos, torch.Generator().manual_seed(seed), text_as=other)

    long_eps = [e for e, ep in enumerate(eps) if len(ep.video) >= window + 2 + max_h]
    if not long_eps:
        raise LiveworldError(f"no held-out episode has {window + 2 + max_h} frames for the {max_h}-frame rollout; record longer ones or pass shorter --horizons")
    roll_starts = []
    for i in range(starts):  # a random start with a full history before it and max_h frames after it
        e = long_eps[i % len(long_eps)]
        latest = len(eps[e].video) - max_h
        roll_starts.append((e, int(rng.integers(window + 1, latest + 1))))
    roll, hold, strip = rollout(model, tok, eps, window, sampling, roll_starts, max_h, gen, return_frames=report is not None)
    # controllability: the same starts with the actions of other starts (a cyclic shift)
    true_actions = torch.stack([torch.stack([eps[e].action[t + h] for h in range(8)]) for e, t in roll_starts])
    shuffled = true_actions.roll(1, 0)
    if torch.equal(shuffled, true_actions):
        shuffled = true_actions[:, torch.randperm(8, generator=gen)]
    roll_shuf, _, _ = rollout(model, tok, eps, window, sampling, roll_starts, 8, gen, actions=shuffled)
    roll8, _, _ = rollout(model, tok, eps, window, sampling, roll_starts, 8, gen, actions=true_actions)

    # stability: a long free rollout driven by recorded actions, cycled
    acts = torch.cat([ep.action[1:] for ep in eps])
    acts = acts.repeat(stability_frames // len(acts) + 1, 1)[:stability_frames]
    gen_stats, snaps, tail = free_rollout(model, tok, eps[0], acts, window, sampling, gen) if stability_frames > 0 else (None, {}, None)
    real = torch.cat([ep.frames for ep in eps])
    rs = pixel_stats(real)
    real_stats = torch.stack([rs["mean"], rs["std"], rs["edges"]], -1)
    lo, hi = real_stats.quantile(0.01, 0), real_stats.quantile(0.99, 0)

    res = {
        "bench": "eval", "checkpoint": str(meta["path"]), "world": meta["world"]["world"], "source": source,
        "steps": steps, "solver": solver, "guidance": guidance, "nfe_per_frame": nfe(steps, solver) + 1,
        "window": window, "teacher_forced_frames": len(pick),
        "next_frame_psnr_db": round(tf["psnr"], 2), "next_frame_ssim": round(tf["ssim"], 4),
        "copy_last_psnr_db": round(tf["copy"], 2), "autoencoder_psnr_db": round(tf["ae"], 2),
        "next_frame_gain_db": round(tf["psnr"] - tf["copy"], 2),
        "rollout_psnr_db": {str(h): round(roll[h - 1], 2) for h in horizons},
        "hold_psnr_db": {str(h): round(hold[h - 1], 2) for h in horizons},
        "rollout_gain_over_hold_db": {str(h): round(roll[h - 1] - hold[h - 1], 2) for h in horizons},
        "rollout_starts": starts,
        "action_psnr_h8_true_db": round(roll8[-1], 2), "action_psnr_h8_shuffled_db": round(roll_shuf[-1], 2),
        "action_delta_psnr_db": round(roll8[-1] - roll_shuf[-1], 2),
    }
    if tf_other is not None:
        res.update({"text_delta_psnr_db": round(tf["psnr"] - tf_other["psnr"], 2), "contrast_text": contrast_text})
    if "lsd" in tf:
        res.update({"audio_lsd_db": round(tf["lsd"], 2), "audio_lsd_copy_last_db": round(tf["lsd_copy"], 2)})
        res.update(audio_figures(model, tok, eps, window, sampling, history_at, _batch_text, gen))
    if gen_stats is not None:
        inside = ((gen_stats >= lo) & (gen_stats <= hi)).all(-1).float()
        last = gen_stats[-100:]
        res["stability"] = {
            "frames": stability_frames,
            "gen_mean_last100": round(last[:, 0].mean().item(), 4), "gen_std_last100": round(last[:, 1].mean().item(), 4),
            "gen_edges_last100": round(last[:, 2].mean().item(), 4),
            "real_mean": round(real_stats[:, 0].mean().item(), 4), "real_std": round(real_stats[:, 1].mean().item(), 4),
            "real_edges": round(real_stats[:, 2].mean().item(), 4),
            "frac_in_real_range": round(inside.mean().item(), 4),
            "frac_in_real_range_last100": round(inside[-100:].mean().item(), 4),
        }
        # Structure: the last 100 frames against their nearest real frame (of the other held-out
        # episodes), beside the same figure for real frames of the first episode.
        others = torch.cat([ep.frames for ep in eps[1:]]) if len(eps) > 1 else real
        ref = eps[0].frames[-len(tail):]
        near_gen, near_real = nearest_real(tail, others), nearest_real(ref, others)
        res["stability"].update({
            "nearest_real_psnr_db_last100": round(near_gen["psnr"].mean().item(), 2),
            "nearest_real_ssim_last100": round(near_gen["ssim"].mean().item(), 4),
            "nearest_real_psnr_db_real": round(near_real["psnr"].mean().item(), 2),
            "nearest_real_ssim_real": round(near_real["ssim"].mean().item(), 4),
        })
    rv_strip = {}
    if revisit or revisit_count:
        try:
            rv_raw, rv_source = revisit_episodes(meta, revisit, revisit_count)
        except LiveworldError as e:  # a world without the revisit policy's buttons
            rv_raw, rv_source = [], f"none ({e})"
        figs, rv_strip = revisit_figures(model, tok, rv_raw, window, sampling, gen)
        res.update(figs)
        res["revisit_source"] = rv_source
    res.update({"eval_seconds": round(time.perf_counter() - t0, 1), "date": date.today().isoformat(),
                "threads": torch.get_num_threads()})
    if report:
        from liveworld.eval.report import write_report

        res["report"] = write_report(report, res, roll, hold, strip, roll_starts, eps, gen_stats, lo, hi, snaps, rv_strip)
    return res


def format_eval(res: dict) -> str:
    lines = [f"eval of {res['checkpoint']} ({res['world']}), {res['steps']} {res['solver']} step(s), guidance {res['guidance']}, "
             f"{res['nfe_per_frame']} passes a frame, window {res['window']}",
             f"  data: {res['source']}",
             f"  {'next-frame PSNR (teacher-forced)':<38}{res['next_frame_psnr_db']:>8.2f} dB   SSIM {res['next_frame_ssim']:.3f}",
             f"  {'copy-last-frame baseline':<38}{res['copy_last_psnr_db']:>8.2f} dB   (gain {res['next_frame_gain_db']:+.2f} dB)",
             f"  {'autoencoder ceiling':<38}{res['autoencoder_psnr_db']:>8.2f} dB"]
    for h, v in res["rollout_psnr_db"].items():
        lines.append(f"  {'rollout PSNR at horizon ' + h:<38}{v:>8.2f} dB   hold last real frame {res['hold_psnr_db'][h]:.2f} "
                     f"(gain {res['rollout_gain_over_hold_db'][h]:+.2f})")
    lines.append(f"  {'action delta at horizon 8':<38}{res['action_delta_psnr_db']:>+8.2f} dB   "
                 f"(true {res['action_psnr_h8_true_db']:.2f}, shuffled {res['action_psnr_h8_shuffled_db']:.2f}, {res['rollout_starts']} starts)")
    if "text_delta_psnr_db" in res:
        lines.append(f"  {'text delta (true - other world text)':<38}{res['text_delta_psnr_db']:>+8.2f} dB")
    if "audio_lsd_db" in res:
        lines.append(f"  {'audio log-spectral distance':<38}{res['audio_lsd_db']:>8.2f} dB   (copy-last {res['audio_lsd_copy_last_db']:.2f})")
    if "audio_edge_click_db" in res:
        lines.append(f"  {'audio edge clicks':<38}{res['audio_edge_click_db']:>+8.2f} dB   (real {res['real_edge_click_db']:+.2f}, "
                     f"{res['audio_rollouts']} streams)")
    if res.get("shot_audio_recall") is not None:
        lines.append(f"  {'shots heard in generated sound':<38}{res['shot_audio_recall']:>8.3f}     ({res['shots']} shots)")
    if "stability" in res:
        s = res["stability"]
        lines.append(f"  {'stability, ' + str(s['frames']) + ' frames':<38}mean {s['gen_mean_last100']:.3f} (real {s['real_mean']:.3f}), "
                     f"std {s['gen_std_last100']:.3f} (real {s['real_std']:.3f}), edges {s['gen_edges_last100']:.3f} (real {s['real_edges']:.3f}); "
                     f"{100 * s['frac_in_real_range']:.0f}% of frames in the real range")
        lines.append(f"  {'last 100 frames vs nearest real frame':<38}{s['nearest_real_psnr_db_last100']:>8.2f} dB   "
                     f"SSIM {s['nearest_real_ssim_last100']:.3f} (real frames: {s['nearest_real_psnr_db_real']:.2f} dB, "
                     f"SSIM {s['nearest_real_ssim_real']:.3f})")
    if "revisit_pairs" in res:
        for g in res["revisit_psnr_db_no_memory"]:
            mem = res.get("revisit_psnr_db", {}).get(g)
            nm, hd = res["revisit_psnr_db_no_memory"][g], res["revisit_hold_psnr_db"][g]
            if nm is None:
                continue
            lines.append(f"  {'revisit PSNR, return ' + g + ' frames':<38}"
                         + (f"{mem:>8.2f} dB with memory, " if mem is not None else "")
                         + f"{nm:.2f} window only, hold the view before leaving {hd:.2f} "
                         f"({res['revisit_pairs_by_gap'][g]} returns)")
    elif "revisit_source" in res:
        lines.append(f"  revisits: none found in {res['revisit_source']}")
    if "report" in res:
        lines.append(f"  report: {res['report']}")
    return "\n".join(lines)


def run_eval(checkpoint: str, data: str | None, steps: int, frames: int, starts: int, stability_frames: int,
             report: str | None, horizons: tuple[int, ...] = HORIZONS, guidance: float = 1.0, solver: str = "euler",
             split: str = "val", episodes: int = 12, revisit: str | None = None, revisit_count: int = 8,
             world: str | None = None) -> dict:
    """One world (a one-world checkpoint, or `world`), else every world of the checkpoint."""
    kw = dict(steps=steps, frames=frames, starts=starts, stability_frames=stability_frames, horizons=horizons,
              guidance=guidance, solver=solver, split=split, episodes=episodes, revisit_count=revisit_count)
    if world is None and "worlds" in read_checkpoint_meta(resolve_checkpoint(checkpoint)):
        from liveworld.eval.worlds import evaluate_worlds, format_worlds

        res = evaluate_worlds(checkpoint, data=data, **kw)
        print(format_worlds(res))
        print(json.dumps(res))
        return res
    res = evaluate(checkpoint, data, report=report, revisit=revisit, world=world, **kw)
    print(format_eval(res))
    print(json.dumps(res))
    return res
