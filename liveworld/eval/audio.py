"""Sound of a world model, heard as a player hears it: generated frames' audio decoded and
played back to back (tokenizers/audio.AudioStream, cross-faded for a lapped codec), against the
recording.

    audio_edge_click_db       clicks at the frame rate in generated streams: the energy of
                              sample steps at frame joins over that inside frames
                              (tokenizers/audio.edge_click_db); real_edge_click_db beside it
    shot_audio_recall         of the attack presses after which the recording has a sound onset
                              within +-1 frame (a shot fired), the fraction after which the
                              generated sound has one too, given the real actions (Doom)

Every stream comes from the one reference sampler (model/sampling.py) from real context.
Knows the sampler, the codec's playback and onsets; knows nothing about training.
"""

from __future__ import annotations

import numpy as np
import torch

from liveworld.tokenizers.audio import WINDOW_S, edge_click_db, find_onsets, log_energy_db

SHOT_ACTIONS = ("ATTACK",)  # a gun's trigger (Doom); Atari's FIRE serves or launches, it is no shot


@torch.no_grad()
def generated_streams(model, tok, eps, window: int, sampling, history_at, text_at, horizon: int, gen,
                      chunks: int = 4, batch: int = 32) -> list[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """Rollouts of `horizon` frames from real context with the real actions, at up to `chunks`
    consecutive starts per episode. Returns (episode, start, generated audio latents [H, Na, Ca],
    actions [H, A]) per rollout."""
    starts = [(e, t) for e, ep in enumerate(eps) for t in range(window + 1, len(ep.video) - horizon + 1, horizon)
              if eps[e].audio is not None][: chunks * len(eps)]
    out = []
    for i in range(0, len(starts), batch):
        part = starts[i: i + batch]
        hist = history_at(eps, part, window, model.cfg)
        text, valid = text_at(eps, part)
        audio, acts = [], []
        for h in range(horizon):
            act = torch.stack([eps[e].action[t + h] for e, t in part])
            v, a = sampling(model, hist, act, text, valid, gen)
            hist = hist.push(v, act, a, window)
            audio.append(a)
            acts.append(act)
        audio, acts = torch.stack(audio, 1), torch.stack(acts, 1)
        out += [(e, t, audio[b], acts[b]) for b, (e, t) in enumerate(part)]
    return out


def _frame_onsets(stream: torch.Tensor, S: int, rate: int, lag: int = 0) -> set[int]:
    """Frames (by sample index, less `lag`, over S) where a 10 ms window's energy jumps by > 9 dB."""
    w = max(1, round(WINDOW_S * rate))
    on = find_onsets(log_energy_db(stream, w))
    return {int((i * w - lag) // S) for i in on.tolist()}


@torch.no_grad()
def audio_figures(model, tok, eps, window: int, sampling, history_at, text_at, gen, horizon: int = 32) -> dict:
    """audio_edge_click_db / real_edge_click_db and, for a world with a trigger (Doom's ATTACK),
    shot_audio_recall (with the number of shots it counts) over rollouts of `horizon` frames."""
    cfg = tok.audio.cfg
    S, O = cfg.samples_per_frame, cfg.overlap
    rate = cfg.sample_rate_hz
    rolls = generated_streams(model, tok, eps, window, sampling, history_at, text_at, horizon, gen)
    if not rolls:
        return {}
    names = tok.action_space.names
    shot = next((names.index(n) for n in SHOT_ACTIONS if n in names), None) if tok.action_space.kind == "buttons" else None
    gen_clicks, real_clicks, hits, shots = [], [], 0, 0
    for e, t, a, act in rolls:
        stream = tok.audio_stream().play(tok.audio.decode(a).clamp(-1, 1))  # [C, H * S], lagging by O samples
        real = eps[e].audio_wave[t: t + horizon].permute(1, 0, 2).reshape(stream.shape[0], -1)
        gen_clicks.append(edge_click_db(stream, S, lag=O))
        real_clicks.append(edge_click_db(real, S))
        if shot is None:
            continue
        press = tok.actions.decode(act)[:, shot].numpy()
        starts = [h for h in range(1, horizon - 1) if press[h] and not press[h - 1]]
        real_on, gen_on = _frame_onsets(real, S, rate), _frame_onsets(stream, S, rate, lag=O)
        for h in starts:
            if real_on & {h - 1, h, h + 1}:  # a shot was fired (the recording says so)
                shots += 1
                hits += bool(gen_on & {h - 1, h, h + 1})
    out = {"audio_edge_click_db": round(float(np.mean(gen_clicks)), 2), "real_edge_click_db": round(float(np.mean(real_clicks)), 2),
           "audio_rollouts": len(rolls)}
    if shot is not None:
        out.update({"shot_audio_recall": round(hits / shots, 3) if shots else None, "shots": shots})
    return out
