"""What evaluation reads: held-out episodes (a dataset's validation split, or fresh recordings
with seeds the model never trained on), encoded with the tokens training reads, the real
history before any position, and the random key presses of the engine's `--actions random`.

Shape legend: T frames of an episode, L = W + K frames of history (W the attention window,
K the stacked latents of each frame), C latent channels on an h x w grid, A action width.

Knows episodes, tokenizers and the sampler's History; knows nothing about figures or training.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from liveworld.common import LiveworldError
from liveworld.data.arrays import resize_frames
from liveworld.data.episode import Episode
from liveworld.model.memory import MemoryBank, bank_of_prefix
from liveworld.model.sampling import History
from liveworld.tokenizers.audio import frame_stream


@dataclass
class EncodedEpisode:
    frames: torch.Tensor  # float [T, 3, H, W] in [0, 1]: the real frames at the world's size (area-resized)
    video: torch.Tensor  # [T, C, h, w]
    action: torch.Tensor  # [T, A]
    audio: torch.Tensor | None  # [T, Na, Ca]
    audio_wave: torch.Tensor | None  # float [T, C, S] in [-1, 1]
    text: torch.Tensor  # [T, T_text]: each frame's text
    text_valid: torch.Tensor  # [T, T_text]

    def __len__(self) -> int:
        return len(self.video)


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


def history_length(cfg) -> int:
    """L = W + K: the frames a History holds (the window, and the stack of its oldest frame)."""
    return cfg.frames - 1 + getattr(cfg, "stack", 1)


def history_at(eps: list[EncodedEpisode], pos: list[tuple[int, int]], window: int, cfg=None,
               memory: bool = True) -> History:
    """The real history before each (episode, t): its last W + K frames t - W - K .. t - 1, the
    episode's first frame repeated where there are fewer (a stream that stood still before it
    began, as History.start pads). `cfg` (the model's OmniConfig) gives K (`stack`, default 1)
    and, for a model with memory units and `memory` True, each stream's bank of the frames that
    left its window before (model/memory.py)."""
    K = getattr(cfg, "stack", 1) if cfg is not None else 1
    L = window + K
    rows = [[max(0, t - L + k) for k in range(L)] for _, t in pos]
    v = torch.stack([eps[e].video[r] for (e, _), r in zip(pos, rows)])
    a = torch.stack([eps[e].action[r] for (e, _), r in zip(pos, rows)])
    au = torch.stack([eps[e].audio[r] for (e, _), r in zip(pos, rows)]) if eps[0].audio is not None else None
    if cfg is None or not memory or not getattr(cfg, "memory_units", 0):
        return History(v, a, au, stack=K)
    # Frame K - 1 of the history (the newest frame that is only stacked) is episode frame
    # t - W - 1, numbered t - W - 2 (episode frame 0 is the opening frame, -1); it and every
    # frame before it have left the window, so the bank holds episode frames 1 .. t - W - 1.
    banks = [bank_of_prefix(eps[e].video[1: max(1, t - window)], cfg.memory_units, cfg.memory_patch,
                            cfg.memory_rule, cfg.memory_stride) for e, t in pos]
    first = torch.tensor([t - window - 2 for _, t in pos])
    return History(v, a, au, MemoryBank.stack(banks), first, stack=K)


def text_at(eps: list[EncodedEpisode], pos: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The text known before each position: that of the last frame of its history."""
    return (torch.stack([eps[e].text[t - 1] for e, t in pos]),
            torch.stack([eps[e].text_valid[t - 1] for e, t in pos]))


def stream_actions(tok, frames: int, seed: int) -> torch.Tensor:
    """`frames` action vectors [frames, A] drawn as `liveworld play --actions random --seed
    SEED` draws them (serve/play.random_actions: held random button combinations, 4-12 frames
    each), in the model's action layout."""
    from liveworld.serve.play import random_actions

    rows = random_actions(SimpleNamespace(action_space=tok.action_space), frames, seed)
    return tok.actions.encode(np.stack([tok.actions.from_names(r) for r in rows])).float()


def heldout_episodes(meta: dict, data: str | None, need: int, count: int, split: str = "val",
                     steps: int = 300) -> tuple[list[Episode], str]:
    """Episodes the model never trained on: a dataset's validation split (or, with split="all",
    every episode of a dataset recorded apart from the training data), else `count` fresh
    recordings of up to `steps` frames with seeds above the training range. Recordings shorter
    than `need` frames are passed over (up to 3 * count tries): a world whose episodes end early
    keeps the ones it has and is evaluated at the horizons they allow."""
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
        while len(eps) < count and k < count * 3:
            ep = record_episode(world, "explore", seed0 + k, max(need, steps))
            if len(ep) >= need:
                eps.append(ep)
            k += 1
    finally:
        world.close()
    return eps, f"fresh {meta['world']['world']} episodes, seeds {seed0}..{seed0 + k - 1} (never used for training)"


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
