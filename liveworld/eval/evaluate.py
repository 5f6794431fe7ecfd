"""`liveworld eval`: how good a world model is, on held-out episodes (a dataset's validation
split, or fresh recordings with seeds it never trained on), scored against the real pixels.

    teacher-forced   one step ahead from the real history at N positions (512 by default):
                     next_frame_gain_db over copy-last, action_effect_db and turn_swap_db with
                     the same noise for the true and the other action (eval/figures.py)
    rollouts         64 starts, 32 frames each, recorded actions: rollout_minus_hold_db at 8
                     and 32, rollout_action_effect_db (horizons 1-8, paired noise), edge_ratio
                     at horizons 1 and 32, rollout PSNR and holding the last real frame
    streams          16 streams of 1,000 frames of the engine's random keys: edge_ratio over the
                     last 100 frames, world_kept_at_1000 (eval/identity.py), in_range_last100
    audio            log-spectral distance one step ahead; clicks and shots heard in the
                     rollouts' sound (eval/audio.py)
    revisits         (--revisit-episodes N) returns to a view with and without memory
                     (eval/revisit_figures.py)

Gains are 10·log10 of ratios of pooled MSE, each mean with a `_se` twin (eval/stats.py says
how). Every frame comes from the one reference sampler (model/sampling.predict_next, through
eval/rollout.py) with the steps, solver and guidance the JSON names, and `d`, the step size it
feeds the model at t = 1. A world whose episodes are short is scored at the horizons they
allow: a figure they cannot give is null, never an error after the work.

A table, then (with --json) one JSON line last. Knows metrics and the sampler; knows nothing
about training.
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import torch

from liveworld.common import LiveworldError
from liveworld.data.arrays import resize_frames
from liveworld.eval import identity
from liveworld.eval.audio import audio_figures

# EncodedEpisode, history_at and text_at are imported from here by scripts/ (probes)
from liveworld.eval.episodes import (  # noqa: F401
    EncodedEpisode,
    encode_episode,
    heldout_episodes,
    history_at,
    history_length,
    revisit_episodes,
    text_at,
)
from liveworld.eval.figures import (
    rollout_figures,
    rollout_starts,
    stream_figures,
    teacher_forced,
)
from liveworld.eval.rollout import Sampling
from liveworld.eval.stats import se_method
from liveworld.flow import nfe
from liveworld.world import (
    load_world_model,
    load_world_tokenizers,
    sampling_steps,
    select_world,
    world_names,
)

ROLLOUT_HORIZON = 32


def other_world_latents(meta: dict, world: str, count: int = 4) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Real latents of every other world of a checkpoint of several (every 2nd frame of `count`
    fresh held-out recordings each): the classes a stream may drift into. -> (latents by
    world, the worlds that could not be recorded here, with why)."""
    out, missing = {}, []
    for w in world_names(meta):
        if w == world:
            continue
        m = select_world(meta, w)
        try:
            raw, _ = heldout_episodes(m, None, need=2, count=count)
        except (LiveworldError, ImportError) as e:
            missing.append(f"{w} ({e})")
            continue
        out[w] = latents_of(raw, load_world_tokenizers(m))
    return out, missing


@torch.no_grad()
def latents_of(raw: list, tok, every: int = 2) -> torch.Tensor:
    """Autoencoder latents [N, C, h, w] of every `every`-th frame of episodes, at the world's size."""
    frames = torch.cat([resize_frames(ep.frames[::every], tok.frame_size) for ep in raw]).float() / 255
    return torch.cat([tok.video.encode(b) for b in frames.split(256)])


def rounded(x, nd: int = 4):
    """Every float of a (nested) result rounded to `nd` decimals, for the JSON and the table."""
    if isinstance(x, float):
        return round(x, nd) + 0.0  # + 0.0: no "-0.0"
    if isinstance(x, dict):
        return {k: rounded(v, nd) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v, nd) for v in x]
    return x


def _null_rollout_figures() -> dict:
    return {"rollout_starts": 0, "rollout_horizon": 0, "rollout_psnr_db": {}, "hold_psnr_db": {},
            "rollout_minus_hold_db": {"8": None, "32": None}, "rollout_minus_hold_db_se": {"8": None, "32": None},
            "edge_ratio": {"1": None, "32": None}, "edge_ratio_se": {"1": None, "32": None},
            "rollout_action_effect_db": None, "rollout_action_effect_db_se": None}


def evaluate(checkpoint: str, data: str | None = None, steps: int | None = None, positions: int = 512, starts: int = 64,
             streams: int = 16, stream_frames: int = 1000, horizon: int = ROLLOUT_HORIZON, report: str | None = None,
             seed: int = 0, guidance: float = 1.0, solver: str = "euler", split: str = "val", episodes: int = 12,
             revisit: str | None = None, revisit_count: int = 0, world: str | None = None, contrast_text: str | None = None,
             loaded: tuple | None = None, heldout: tuple[list, str] | None = None,
             other_latents: dict[str, torch.Tensor] | None = None,
             frames: int | None = None, stability_frames: int | None = None, horizons: tuple[int, ...] | None = None) -> dict:
    """One world's figures (`world` of a checkpoint of several; default its first).

    contrast_text: another world's description, for text_delta_psnr_db (the same positions and
    noise with it). loaded: the (model, meta) of `checkpoint`, already loaded. heldout: the
    (episodes, source) to score on, already loaded. other_latents: other worlds' real latents
    for the world classifier (default: recorded here for a checkpoint of several worlds).
    frames, stability_frames, horizons: the old names of positions, stream_frames and the
    rollout horizon (its largest)."""
    positions = frames if frames is not None else positions
    stream_frames = stability_frames if stability_frames is not None else stream_frames
    horizon = max(horizons) if horizons else horizon
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        seconds[name] = round(now - since, 1)
        return now

    model, meta = loaded if loaded is not None else load_world_model(checkpoint)
    meta = select_world(meta, world)
    name = meta["world"]["world"]
    tok = load_world_tokenizers(meta)
    steps = sampling_steps(meta, steps)  # None: the world's own, as play samples it
    sampling = Sampling(steps, solver, guidance)
    cfg = model.cfg
    L = history_length(cfg)
    raw, source = heldout if heldout is not None else heldout_episodes(meta, data, need=L + 2, count=episodes, split=split)
    raw = [ep for ep in raw if len(ep) >= 2]
    if not raw:
        raise LiveworldError(f"no held-out episode of {name} has 2 frames; record some or pass --data")
    eps = [encode_episode(ep, tok, cfg.text_len) for ep in raw]
    tick = lap("episodes", t0)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    res = {"bench": "eval", "checkpoint": str(meta["path"]), "world": name, "source": source,
           "episodes": len(eps), "frames": int(sum(len(ep) for ep in eps)),
           "steps": steps, "solver": solver, "guidance": guidance, "d": sampling.first_d(model),
           "nfe_per_frame": nfe(steps, solver) + (1 if cfg.frames > 1 else 0), "window": cfg.frames - 1, "stack": getattr(cfg, "stack", 1)}

    every = [(e, t) for e, ep in enumerate(eps) for t in range(1, len(ep))]
    pick = sorted(rng.choice(len(every), size=min(positions, len(every)), replace=False))
    res.update(teacher_forced(model, tok, sampling, eps, [every[i] for i in pick], gen, rng, contrast_text, seed))
    tick = lap("teacher_forced", tick)

    roll_starts, H = rollout_starts(eps, L, horizon, starts, rng)
    runs = None
    if roll_starts:
        figs, runs = rollout_figures(model, tok, sampling, eps, roll_starts, H, gen, rng, seed)
        res.update(figs)
    else:
        res.update(_null_rollout_figures())
        res["rollout_note"] = f"no held-out episode has the {L + 1} frames a rollout needs"
    if runs is not None and runs["audio"] is not None and eps[0].audio_wave is not None:
        res.update(audio_figures(tok, eps, [(e, t, runs["audio"][i], runs["actions"][i]) for i, (e, t) in enumerate(roll_starts)]))
    tick = lap("rollouts", tick)

    trace = {}
    if streams > 0 and stream_frames > 0:
        missing = []
        if other_latents is None:
            other_latents, missing = other_world_latents(meta, name) if "worlds" in meta else ({}, [])
        real, real_z = [ep.frames for ep in eps], [ep.video for ep in eps]
        clf = identity.build(name, tok, torch.cat(real), torch.cat(real_z), other_latents, seed)
        res["world_classes"] = sorted(set(clf.labels), key=clf.labels.index)
        if missing:
            res["world_classes_missing"] = missing
        res["world_kept_real"] = identity.kept_fraction_real(name, tok, real, real_z, other_latents, seed)
        tick = lap("world_classifier", tick)
        figs, trace = stream_figures(model, tok, sampling, eps, streams, stream_frames, gen, rng, clf, seed, trace=report is not None)
        res["edge_ratio"] = {**res.get("edge_ratio", {}), **figs.pop("edge_ratio")}
        res["edge_ratio_se"] = {**res.get("edge_ratio_se", {}), **figs.pop("edge_ratio_se")}
        res.update(figs)
        tick = lap("streams", tick)
    else:
        res["edge_ratio"]["last100"], res["edge_ratio_se"]["last100"] = None, None
        res.update({"world_kept_at_1000": None, "world_kept_at_1000_se": None, "in_range_last100": None,
                    "in_range_last100_se": None, "streams": 0, "stream_frames": 0})

    rv_strip = {}
    if revisit or revisit_count:
        from liveworld.eval.revisit_figures import revisit_figures

        try:
            rv_raw, rv_source = revisit_episodes(meta, revisit, revisit_count)
        except LiveworldError as e:  # a world without the revisit policy's buttons
            rv_raw, rv_source = [], f"none ({e})"
        figs, rv_strip = revisit_figures(model, tok, rv_raw, sampling, gen)
        res.update(figs)
        res["revisit_source"] = rv_source
        tick = lap("revisits", tick)

    res["se_method"] = {"teacher_forced": se_method([e for e, _ in (every[i] for i in pick)], "episodes"),
                        "rollouts": se_method([e for e, _ in roll_starts], "episodes") if roll_starts else None,
                        "streams": "binomial over streams; edge_ratio last100: bootstrap over streams and over real "
                                   "episodes, combined by the delta method"}
    res.update({"eval_seconds": round(time.perf_counter() - t0, 1), "seconds": seconds, "date": date.today().isoformat(),
                "threads": torch.get_num_threads()})
    res = rounded(res)
    if report:
        from liveworld.eval.report import write_report

        res["report"] = write_report(report, res, runs["psnr"] if runs else [], runs["hold"] if runs else [],
                                     runs["frames"] if runs else None, roll_starts, eps, trace.get("stats"), trace.get("lo"),
                                     trace.get("hi"), trace.get("snapshots"), rv_strip)
    return res


def _v(x, nd: int = 2, signed: bool = True, unit: str = " dB") -> str:
    if x is None:
        return "n/a"
    return f"{x:+.{nd}f}{unit}" if signed else f"{x:.{nd}f}{unit}"


def _pm(res: dict, key: str, sub: str | None = None, nd: int = 2, signed: bool = True, unit: str = " dB") -> str:
    v, se = (res.get(key), res.get(key + "_se")) if sub is None else (res.get(key, {}).get(sub), res.get(key + "_se", {}).get(sub))
    return _v(v, nd, signed, unit) + (f" ± {se:.{nd}f}" if se is not None and v is not None else "")


def format_eval(res: dict) -> str:
    """The readable table of one world's figures."""
    w = 40
    lines = [f"eval of {res['checkpoint']} ({res['world']}): {res['steps']} {res['solver']} step(s), guidance {res['guidance']}, "
             f"d = {res['d']:g} at t = 1, window {res['window']}, stack {res['stack']}",
             f"  data: {res['source']}",
             f"  {'next frame vs copy-last (pooled)':<{w}}{_pm(res, 'next_frame_gain_db')}   "
             f"(model {_v(res['next_frame_psnr_db'], signed=False)}, copy-last {_v(res['copy_last_psnr_db'], signed=False)}, "
             f"autoencoder {_v(res['autoencoder_psnr_db'], signed=False)}; {res['positions']} positions)",
             f"  {'action effect, one step, same noise':<{w}}{_pm(res, 'action_effect_db')}   ({res['action_effect_positions']} positions)",
             f"  {'left/right swap on turning frames':<{w}}{_pm(res, 'turn_swap_db')}   ({res['turn_swap_positions']} positions)"]
    if "text_delta_psnr_db" in res:
        lines.append(f"  {'text effect (true vs other world text)':<{w}}{_pm(res, 'text_delta_psnr_db')}")
    lines.append(f"  {'rollout - hold, horizon 8 / 32':<{w}}{_pm(res, 'rollout_minus_hold_db', '8')} / "
                 f"{_pm(res, 'rollout_minus_hold_db', '32')}   ({res['rollout_starts']} starts, {res['rollout_horizon']} frames)")
    lines.append(f"  {'rollout action effect, horizons 1-8':<{w}}{_pm(res, 'rollout_action_effect_db')}")
    if res.get("rollout_psnr_db"):
        lines.append(f"  {'rollout PSNR by horizon':<{w}}" + ", ".join(
            f"h{h} {v:.2f} (hold {res['hold_psnr_db'][h]:.2f})" for h, v in res["rollout_psnr_db"].items()))
    lines.append(f"  {'edge ratio, horizon 1 / 32 / last 100':<{w}}{_pm(res, 'edge_ratio', '1', 3, False, '')} / "
                 f"{_pm(res, 'edge_ratio', '32', 3, False, '')} / {_pm(res, 'edge_ratio', 'last100', 3, False, '')}")
    if res.get("streams"):
        lines.append(f"  {'world kept at frame ' + str(res['stream_frames']):<{w}}{_pm(res, 'world_kept_at_1000', None, 3, False, '')}   "
                     f"(real frames: {_v(res.get('world_kept_real'), 3, False, '')}; assigned {res.get('world_assigned_at_1000')})")
        lines.append(f"  {'in the real range, last 100 frames':<{w}}{_pm(res, 'in_range_last100', None, 3, False, '')}   "
                     f"(real windows: {_v(res.get('in_range_real'), 3, False, '')}; {res['streams']} streams)")
        s = res["stability"]
        lines.append(f"  {'stream pixels, last 100 frames':<{w}}mean {s['gen_mean_last100']:.3f} (real {s['real_mean']:.3f}), "
                     f"std {s['gen_std_last100']:.3f} (real {s['real_std']:.3f}), edges {s['gen_edges_last100']:.4f} "
                     f"(real {s['real_edges']:.4f}), nearest real frame {s['nearest_real_psnr_db_last100']:.2f} dB "
                     f"(real {_v(s['nearest_real_psnr_db_real'], signed=False)})")
    if "audio_lsd_db" in res:
        lines.append(f"  {'audio log-spectral distance':<{w}}{res['audio_lsd_db']:>6.2f} dB   (copy-last {res['audio_lsd_copy_last_db']:.2f})")
    if "audio_edge_click_db" in res:
        lines.append(f"  {'audio edge clicks':<{w}}{res['audio_edge_click_db']:>+6.2f} dB   (real {res['real_edge_click_db']:+.2f}, "
                     f"{res['audio_rollouts']} streams)")
    if res.get("shot_audio_recall") is not None:
        lines.append(f"  {'shots heard in generated sound':<{w}}{res['shot_audio_recall']:>6.3f}     ({res['shots']} shots)")
    if "revisit_pairs" in res:
        for g in res["revisit_psnr_db_no_memory"]:
            mem = res.get("revisit_psnr_db", {}).get(g)
            nm, hd = res["revisit_psnr_db_no_memory"][g], res["revisit_hold_psnr_db"][g]
            if nm is None:
                continue
            lines.append(f"  {'revisit PSNR, return ' + g + ' frames':<{w}}"
                         + (f"{mem:.2f} dB with memory, " if mem is not None else "")
                         + f"{nm:.2f} window only, hold the view before leaving {hd:.2f} ({res['revisit_pairs_by_gap'][g]} returns)")
    elif "revisit_source" in res:
        lines.append(f"  revisits: none found in {res['revisit_source']}")
    lines.append(f"  {'seconds':<{w}}{res['eval_seconds']:.0f} ({', '.join(f'{k} {v:.0f}' for k, v in res['seconds'].items())}), "
                 f"{res['threads']} thread(s)")
    if "report" in res:
        lines.append(f"  report: {res['report']}")
    return "\n".join(lines)

