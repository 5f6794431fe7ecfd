"""Every frame evaluation generates comes from here, through the one reference sampler
(`liveworld.model.sampling.predict_next`) with one `Sampling` (steps, solver, guidance):

    predict   one step ahead from real history (teacher-forced), for a list of positions
    rollout   autoregressive from real history with given actions: the one rollout of every
              rollout figure (horizons, action effect, streams, sound, revisits)

Both take their starting noise explicitly ([N, 1, n] one step ahead, [N, H, n] for a rollout,
in `predict_next`'s layout), so two runs that differ only in their actions (or text) draw the
same noise: a paired comparison in which noise cancels. Runs are cut into passes whose rows
depend only on the model and the number of rows, in the order given, so that two runs over the
same rows compute in the same passes (bit for bit the same numbers where only an ignored input
differs).

Knows the sampler and the model's config; knows nothing about pixels, figures or training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from liveworld.eval.episodes import EncodedEpisode, history_at, text_at
from liveworld.flow import step_size_input, time_grid
from liveworld.model.sampling import draw_noise, min_step, predict_next, roll_out

TOKENS_PER_PASS = 4096  # rows x tokens of a pass: more is slower on a CPU (caches), fewer wastes matmul width


@dataclass(frozen=True)
class Sampling:
    """How frames are sampled: the same for every figure of one evaluation."""

    steps: int = 1
    solver: str = "euler"
    guidance: float = 1.0

    def __call__(self, model, hist, action, text, valid, gen: torch.Generator | None = None,
                 noise: torch.Tensor | None = None):
        w = None if self.guidance == 1.0 else torch.full((action.shape[0], model.cfg.guidance_dims), self.guidance)
        return predict_next(model, hist, action, text, valid, self.steps, self.solver, generator=gen, guidance=w, noise=noise)

    def first_d(self, model) -> float:
        """The step size d the sampler feeds the model at t = 1 (flow/solvers.py: the step to
        the next time of the grid, floored at the smallest trained step; 0 for a model that
        never saw d)."""
        ts = time_grid(self.steps)
        return step_size_input(ts[0], ts[1], min_step(model))


def noise_size(model, eps: list[EncodedEpisode]) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """(video shape, audio shape or None) of a frame's noise, as `predict_next` packs it."""
    cfg = model.cfg
    C, h, w = eps[0].video.shape[1:]
    audio = (cfg.audio_tokens, cfg.audio_channels) if cfg.audio_tokens and eps[0].audio is not None else None
    return (C, h, w), audio


def draw(model, eps: list[EncodedEpisode], rows: int, frames: int, gen: torch.Generator) -> torch.Tensor:
    """Starting noise for `rows` runs of `frames` frames: [rows, frames, n]."""
    vshape, ashape = noise_size(model, eps)
    return torch.cat([draw_noise(rows, vshape, ashape, gen) for _ in range(frames)], 1)


def pass_rows(model, eps: list[EncodedEpisode], n: int) -> int:
    """Rows per pass for n rows: about TOKENS_PER_PASS tokens (text, the window and the new
    frame), the rows split evenly (16 rows at most 11 a pass: two passes of 8, not 11 and 5)."""
    cfg = model.cfg
    h, w = eps[0].video.shape[2:]
    per_frame = 1 + h * w + (cfg.audio_tokens if eps[0].audio is not None else 0)
    tokens = cfg.text_len + cfg.frames * per_frame + cfg.memory_units * max(1, h * w // cfg.memory_patch ** 2)
    most = max(1, TOKENS_PER_PASS // tokens)
    passes = -(-max(n, 1) // most)
    return -(-max(n, 1) // passes)


@torch.no_grad()
def predict(model, sampling: Sampling, eps: list[EncodedEpisode], pos: list[tuple[int, int]], actions: torch.Tensor,
            noise: torch.Tensor, text: tuple[torch.Tensor, torch.Tensor] | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The frame at each (episode, t) from the real history before it, with `actions` [N, A]
    and `noise` [N, 1, n]; `text` (ids [T], valid [T]) replaces every position's own text.
    -> latents video [N, C, h, w], audio [N, Na, Ca] or None."""
    W, rows = model.cfg.frames - 1, pass_rows(model, eps, len(pos))
    vs, aus = [], []
    for i in range(0, len(pos), rows):
        part = pos[i: i + rows]
        hist = history_at(eps, part, W, model.cfg)
        ids, valid = text_at(eps, part)
        if text is not None:
            ids, valid = text[0].expand_as(ids), text[1].expand_as(valid)
        v, a = sampling(model, hist, actions[i: i + rows], ids, valid, noise=noise[i: i + rows])
        vs.append(v)
        aus.append(a)
    return torch.cat(vs), (torch.cat(aus) if aus[0] is not None else None)


@torch.no_grad()
def rollout(model, sampling: Sampling, eps: list[EncodedEpisode], starts: list[tuple[int, int]], actions: torch.Tensor,
            noise: torch.Tensor | torch.Generator, memory: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """H frames generated autoregressively from the real history before each start (episode,
    t), the frame at step h led to by actions [N, H, A] and drawn from noise [:, h] (noise
    [N, H, n], or a generator that draws each step's noise in turn). `memory` False runs a
    model with memory on its window alone. The text is the start's own, held for the run.
    -> latents video [N, H, C, h, w], audio [N, H, Na, Ca] or None."""
    N = actions.shape[0]
    W, rows = model.cfg.frames - 1, pass_rows(model, eps, N)
    vshape, ashape = noise_size(model, eps)
    videos, audios = [], []
    for i in range(0, N, rows):
        part = starts[i: i + rows]
        hist = history_at(eps, part, W, model.cfg, memory=memory)
        ids, valid = text_at(eps, part)

        def next_frame(hs, act, h):  # called within this iteration: i, part, ids are this chunk's
            z = noise[i: i + rows, h: h + 1] if isinstance(noise, torch.Tensor) else draw_noise(len(part), vshape, ashape, noise)
            return sampling(model, hs, act, ids, valid, noise=z)

        v, a = roll_out(model, hist, actions[i: i + rows], next_frame)
        videos.append(v)
        audios.append(a)
    return torch.cat(videos), (torch.cat(audios) if audios[0] is not None else None)


@torch.no_grad()
def decode(tok, latents: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Latents [..., C, h, w] -> frames [..., 3, H, W] in [0, 1] (the decoder clamps), as a player sees them."""
    lead = latents.shape[:-3]
    flat = latents.reshape(-1, *latents.shape[-3:])
    out = torch.cat([tok.video.decode(b) for b in flat.split(batch)])
    return out.reshape(*lead, *out.shape[1:])
