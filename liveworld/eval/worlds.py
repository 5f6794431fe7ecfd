"""`liveworld eval` of a checkpoint of several worlds: every world's figures (eval/evaluate.py,
each on its own held-out episodes, with another world's description as the contrast text for
`text_delta_psnr_db`, and the other worlds' real frames among the classes a stream can drift
into for `world_kept_at_1000`) under `worlds`, and whether text alone opens the right world:

    text_to_world_accuracy    the first frame generated from each world's prompt (no context,
                              a blank previous frame: `engine.new_session(prompt=...)`) at that
                              world's grid, assigned to a world by a nearest-centroid classifier
                              on the autoencoder latents of real frames (pooled to a 2 x 2 grid,
                              so worlds of other shapes compare); the fraction assigned right
    text_to_world_accuracy_any_grid   the same with every prompt generated at every world's
                              grid: the shape cannot tell the world, only the text can

Knows the evaluation and the sampler; knows nothing about training.
"""

from __future__ import annotations

import json
import time
from datetime import date

import torch
import torch.nn.functional as F

from liveworld.eval.episodes import encode_episode, heldout_episodes, history_length
from liveworld.eval.evaluate import evaluate, format_eval, latents_of
from liveworld.model.sampling import History, predict_next
from liveworld.world import (
    load_world_model,
    load_world_tokenizers,
    read_world_meta,
    sampling_steps,
    select_world,
    world_names,
)


def pooled(z: torch.Tensor) -> torch.Tensor:
    """Latents [B, C, h, w] -> features [B, C * 4] (a 2 x 2 average grid): comparable across shapes."""
    return F.adaptive_avg_pool2d(z.float(), 2).flatten(1)


@torch.no_grad()
def prompt_frames(model, tok, prompt: str, samples: int, steps: int, gen: torch.Generator) -> torch.Tensor:
    """`samples` first frames from text alone at `tok`'s grid -> latents [samples, C, h, w]."""
    cfg = model.cfg
    C, (h, w) = cfg.video_channels, tok.grid
    audio = torch.zeros(samples, cfg.audio_tokens, cfg.audio_channels) if cfg.audio_tokens else None
    hist = History.start(torch.zeros(samples, C, h, w), torch.zeros(samples, cfg.action_dim), audio, stack=getattr(cfg, "stack", 1))
    ids, valid = tok.text_ids([prompt], cfg.text_len)
    v, _ = predict_next(model, hist, torch.zeros(samples, cfg.action_dim), ids.expand(samples, -1),
                        valid.expand(samples, -1), steps, generator=gen)
    return v


@torch.no_grad()
def text_to_world(model, meta: dict, data: dict[str, list], steps: int = 1, samples: int = 8, seed: int = 0) -> dict:
    """Nearest-centroid accuracy of prompt-started frames (see the module docstring). `data`:
    each world's held-out episodes (their real frames give the centroids)."""
    names = list(data)
    toks = {w: load_world_tokenizers(select_world(meta, w)) for w in names}
    prompts = {w: select_world(meta, w)["world"].get("description", "") for w in names}
    cents = []
    for w in names:
        feats = [pooled(encode_episode(ep, toks[w], model.cfg.text_len).video) for ep in data[w]]
        cents.append(torch.cat(feats).mean(0))
    cents = torch.stack(cents)  # [W, C * 4]
    gen = torch.Generator().manual_seed(seed)
    own, any_grid, confusion = [], [], {}
    for i, w in enumerate(names):
        for g in names:
            z = prompt_frames(model, toks[g], prompts[w], samples, steps, gen)
            pick = torch.cdist(pooled(z), cents).argmin(1)
            right = (pick == i).float()
            any_grid.append(right)
            if g == w:
                own.append(right)
                confusion[w] = {names[j]: int((pick == j).sum()) for j in range(len(names))}
    return {"text_to_world_accuracy": round(torch.cat(own).mean().item(), 3),
            "text_to_world_accuracy_any_grid": round(torch.cat(any_grid).mean().item(), 3),
            "text_to_world_samples": samples, "text_to_world_assigned": confusion}


def evaluate_worlds(checkpoint: str, worlds: list[str] | None = None, data: str | None = None, **kw) -> dict:
    """Every world of the checkpoint (or those named): per-world figures under `worlds`, the
    contrast text of world i being world i+1's description; plus the text-to-world figures.
    `data`: DIR1,DIR2,... held-out data sets, each used for the world it records. kw: those of
    eval/evaluate.evaluate."""
    from liveworld.data.shards import Dataset

    t0 = time.perf_counter()
    model, meta = load_world_model(checkpoint)
    names = worlds or world_names(meta)
    for w in names:
        select_world(meta, w)  # an unknown name fails here, naming the known ones
    sets = {}
    for d in (data.split(",") if data else []):
        ds = Dataset.open(d)
        sets[ds.load(ds.ids()[0]).meta["world"]] = d
    every = world_names(meta)
    # every world's held-out episodes once: scored for the worlds evaluated, and the real frames
    # of each world are a class the streams of the others may drift into
    held = {}
    for w in every:
        m = select_world(meta, w)
        if w in names:
            held[w] = heldout_episodes(m, sets.get(w), need=history_length(model.cfg) + 2, count=kw.get("episodes", 12),
                                       split=kw.get("split", "val"))
        else:
            held[w] = heldout_episodes(m, sets.get(w), need=2, count=4, split=kw.get("split", "val"))
    latents = {w: latents_of(held[w][0][:4], load_world_tokenizers(select_world(meta, w))) for w in every if held[w][0]}
    res = {"bench": "eval", "checkpoint": meta["path"], "worlds": {}}
    for w in names:
        other = every[(every.index(w) + 1) % len(every)]
        contrast = select_world(meta, other)["world"].get("description") if other != w else None
        res["worlds"][w] = evaluate(checkpoint, world=w, contrast_text=contrast, loaded=(model, meta), heldout=held[w],
                                    other_latents={o: z for o, z in latents.items() if o != w}, **kw)
    if len(every) > 1:
        res.update(text_to_world(model, meta, {w: held[w][0][:4] for w in every}, steps=sampling_steps(meta, kw.get("steps"))))
        deltas = [r["text_delta_psnr_db"] for r in res["worlds"].values() if r.get("text_delta_psnr_db") is not None]
        if deltas:
            res["text_delta_psnr_db"] = round(sum(deltas) / len(deltas), 2)
    res.update({"eval_seconds": round(time.perf_counter() - t0, 1), "date": date.today().isoformat(),
                "threads": torch.get_num_threads()})
    return res


def format_worlds(res: dict) -> str:
    lines = [format_eval(r) for r in res["worlds"].values()]
    if "text_to_world_accuracy" in res:
        lines.append(f"text to world: {res['text_to_world_accuracy']:.3f} of first frames from a world's prompt land nearest "
                     f"that world ({res['text_to_world_accuracy_any_grid']:.3f} at every grid); "
                     f"text delta {res.get('text_delta_psnr_db', float('nan')):+.2f} dB on average")
    return "\n".join(lines)


def run_eval(checkpoint: str, data: str | None = None, as_json: bool = False, world: str | None = None, **kw) -> dict:
    """One world (a one-world checkpoint, or `world`), else every world of the checkpoint; the
    table, then with `as_json` the JSON line. kw: evaluate's."""
    if world is None and "worlds" in read_world_meta(checkpoint):
        kw.pop("report", None)
        kw.pop("revisit", None)
        res = evaluate_worlds(checkpoint, data=data, **kw)
        print(format_worlds(res))
    else:
        res = evaluate(checkpoint, data, world=world, **kw)
        print(format_eval(res))
    if as_json:
        print(json.dumps(res))
    return res
