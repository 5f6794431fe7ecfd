"""Sound of a world model, heard as a player hears it: generated frames' audio decoded and
played back to back (tokenizers/audio.AudioStream, cross-faded for a lapped codec), against the
recording.

    audio_edge_click_db       clicks at the frame rate in generated streams: the energy of
                              sample steps at frame joins over that inside frames
                              (tokenizers/audio.edge_click_db); real_edge_click_db beside it
    shot_audio_recall         of the attack presses after which the recording has a sound onset
                              within +-1 frame (a shot fired), the fraction after which the
                              generated sound has one too, given the real actions (Doom)

Every stream is a rollout of eval/rollout.py (the one reference sampler, from real context).
Knows the codec's playback and onsets; knows nothing about models or training.
"""

from __future__ import annotations

import numpy as np
import torch

from liveworld.tokenizers.audio import (
    WINDOW_S,
    edge_click_db,
    find_onsets,
    log_energy_db,
)

SHOT_ACTIONS = ("ATTACK",)  # a gun's trigger (Doom); Atari's FIRE serves or launches, it is no shot


def _frame_onsets(stream: torch.Tensor, S: int, rate: int, lag: int = 0) -> set[int]:
    """Frames (by sample index, less `lag`, over S) where a 10 ms window's energy jumps by > 9 dB."""
    w = max(1, round(WINDOW_S * rate))
    on = find_onsets(log_energy_db(stream, w))
    return {int((i * w - lag) // S) for i in on.tolist()}


@torch.no_grad()
def audio_figures(tok, eps, rolls: list[tuple[int, int, torch.Tensor, torch.Tensor]]) -> dict:
    """audio_edge_click_db / real_edge_click_db and, for a world with a trigger (Doom's ATTACK),
    shot_audio_recall (with the number of shots it counts), over rollouts from real context
    with the real actions (eval/rollout.rollout): (episode, start, generated audio latents
    [H, Na, Ca], actions [H, A]) each."""
    cfg = tok.audio.cfg
    S, O = cfg.samples_per_frame, cfg.overlap
    rate = cfg.sample_rate_hz
    if not rolls:
        return {}
    horizon = rolls[0][2].shape[0]
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
