"""Revisit figures of `liveworld eval`: on routes that come back to a view (eval/revisit.py finds
them from the simulator's poses), the return frame generated with the memory, with the window
only, and the view before leaving held:

    revisit_psnr_db            rollout from the real frames up to s (the view before leaving)
                               with the recorded actions, the frame at the return t against the
                               real one, with the model's memory (models with memory units)
    revisit_psnr_db_no_memory  the same run on the window alone
    revisit_hold_psnr_db       frame s held, against frame t

each a mean over returns at least 32 and 64 frames after leaving. Rollouts are those of
eval/rollout.py. Knows poses, frames and the rollout; knows nothing about training.
"""

from __future__ import annotations

import torch

from liveworld.data.episode import Episode
from liveworld.eval.episodes import EncodedEpisode, encode_episode
from liveworld.eval.metrics import psnr_db
from liveworld.eval.revisit import pick_pairs
from liveworld.eval.rollout import Sampling, decode, rollout


@torch.no_grad()
def revisit_rollouts(model, tok, eps: list[EncodedEpisode], pairs: list[tuple[int, int, int]], sampling: Sampling,
                     gen: torch.Generator, memory: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """For each revisit (episode, s, t): a rollout from the real frames up to s with the recorded
    actions, to the return frame t. -> PSNR of the generated frame t against the real one [P],
    and the generated frames t [P, 3, H, W]."""
    H = max(t - s for _, s, t in pairs)
    starts = [(e, s + 1) for e, s, _ in pairs]
    acts = torch.stack([torch.stack([eps[e].action[min(s + 1 + h, len(eps[e]) - 1)] for h in range(H)]) for e, s, _ in pairs])
    video, _ = rollout(model, sampling, eps, starts, acts, gen, memory=memory)
    at = torch.stack([video[i, t - s - 1] for i, (_, s, t) in enumerate(pairs)])
    frames = decode(tok, at)
    real = torch.stack([eps[e].frames[t] for e, _, t in pairs])
    return psnr_db(frames, real), frames


def revisit_figures(model, tok, raw: list[Episode], sampling: Sampling, gen: torch.Generator, min_gap: int = 32,
                    max_pairs: int = 32) -> tuple[dict, dict]:
    """The figures of the module docstring for returns >= min_gap and >= 2 min_gap frames after
    leaving, and the frames of the report's revisit strip."""
    pairs = pick_pairs([ep.pose for ep in raw], min_gap, max_pairs)
    if not pairs:
        return {}, {}
    eps = [encode_episode(ep, tok, model.cfg.text_len) for ep in raw]
    hold = torch.stack([psnr_db(eps[e].frames[s][None], eps[e].frames[t][None])[0] for e, s, t in pairs])
    gaps = torch.tensor([t - s for _, s, t in pairs])
    runs = {"no_memory": revisit_rollouts(model, tok, eps, pairs, sampling, gen, memory=False)}
    if model.cfg.memory_units:
        runs["memory"] = revisit_rollouts(model, tok, eps, pairs, sampling, gen, memory=True)
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
