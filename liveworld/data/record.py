"""Record episodes of a world with a policy into a dataset directory, resumably.

Episode i uses the seed `seed + i` for both the world and the policy, so a resumed or repeated
run records the same episodes bit for bit, and any episode can be re-recorded alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from liveworld.common import LiveworldError
from liveworld.data.episode import Episode, concat_audio
from liveworld.data.policies import POLICIES, make_policy
from liveworld.data.shards import Dataset, split_for
from liveworld.data.worlds import World, make_world


def record_episode(world: World, policy_name: str, seed: int, steps: int) -> Episode:
    """Plays one episode of at most `steps` frames (fewer if the game ends)."""
    policy = make_policy(policy_name, world, seed)
    obs = world.reset(seed)
    frames, actions, audio, text, poses = [obs.frame], [world.no_action()], [obs.audio], [], [obs.position]
    if obs.text:
        text.append((0, obs.text))
    while len(frames) < steps:
        action = policy.act(obs)
        obs = world.step(action)
        if obs.done:
            break
        if obs.text:
            text.append((len(frames), obs.text))
        frames.append(obs.frame)
        actions.append(action)
        audio.append(obs.audio)
        poses.append(obs.position)
    audio_arr, offsets = concat_audio(audio, world.audio_channels)
    meta = {**world.meta(), "policy": policy_name, "seed": int(seed), "source": "record"}
    timestamps = np.arange(len(frames), dtype=np.float64) / world.fps
    pose = np.array(poses, np.float32) if all(p is not None and len(p) == 3 for p in poses) else None
    return Episode(np.stack(frames), np.stack(actions).astype(np.int32), timestamps, audio_arr, offsets, text, meta, pose)


@dataclass
class RecordStats:
    episodes: int
    frames: int
    skipped: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def record(world_name: str, episodes: int, steps: int, out: str | Path, policy: str = "explore",
           seed: int = 0, val_every: int = 10, progress: bool = True) -> RecordStats:
    if episodes < 1 or steps < 1:
        raise LiveworldError(f"--episodes and --steps must be positive, got {episodes} and {steps}")
    if policy not in POLICIES:
        raise LiveworldError(f"unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    header = {"world": world_name, "policy": policy, "seed": seed, "steps": steps, "val_every": val_every}
    world = make_world(world_name)  # a bad world name fails before anything is written
    frames, t0 = 0, time.perf_counter()
    try:
        ds = Dataset.create_or_resume(out, header)
        todo = [i for i in range(episodes) if i not in ds.entries]
        for i in tqdm(todo, desc=f"record {world_name}", disable=not progress, unit="ep"):
            ep = record_episode(world, policy, seed + i, steps)
            ds.add(i, ep, split_for(i, val_every), seed + i)
            frames += len(ep)
    finally:
        world.close()
    return RecordStats(len(todo), frames, episodes - len(todo), time.perf_counter() - t0)
