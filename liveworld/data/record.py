"""Record episodes of a world with a policy into a dataset directory, resumably.

Episode i uses the seed `seed + i` for both the world and the policy, so a resumed or repeated
run records the same episodes bit for bit, and any episode can be re-recorded alone.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from liveworld.common import LiveworldError
from liveworld.data.episode import Episode, concat_audio
from liveworld.data.policies import POLICIES, make_policy
from liveworld.data.shards import Dataset, split_for, writer_lock
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
    repaired: int = 0  # of `episodes`: listed in the manifest but missing or corrupt

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


@contextmanager
def _owned_games(out: Path):
    """Tags the game processes this recorder starts (their environment names the data set) and,
    before any start, kills the ones a killed recorder of the same data set left behind."""
    from liveworld.data.worlds.doom import OWNER_ENV, reap_orphans

    owner = str(out.resolve())
    reaped = reap_orphans(owner)
    if reaped:
        print(f"record: stopped {reaped} game process(es) left by a killed recorder of {out}")
    old = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = owner
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = old


def record(world_name: str, episodes: int, steps: int, out: str | Path, policy: str = "explore",
           seed: int = 0, val_every: int = 10, progress: bool = True, repair: bool = False) -> RecordStats:
    """Records episodes 0..episodes-1 into `out`, skipping those already there and intact. A
    missing or truncated shard (the quick check) is recorded again, bit for bit the same; with
    `repair`, every shard is also decompressed and checked (the full check)."""
    if episodes < 1 or steps < 1:
        raise LiveworldError(f"--episodes and --steps must be positive, got {episodes} and {steps}")
    if policy not in POLICIES:
        raise LiveworldError(f"unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    header = {"world": world_name, "policy": policy, "seed": seed, "steps": steps, "val_every": val_every}
    out = Path(out)
    created = not out.exists()
    frames, t0 = 0, time.perf_counter()
    with writer_lock(out), _owned_games(out):
        try:
            world = make_world(world_name)  # a bad world name fails before anything is written
        except BaseException:
            if created:
                shutil.rmtree(out, ignore_errors=True)
            raise
        try:
            ds = Dataset.create_or_resume(out, header)
            damaged = ds.damaged(full=repair)
            todo = sorted(i for i in range(episodes) if i not in ds.entries or i in damaged)
            for i in tqdm(todo, desc=f"record {world_name}", disable=not progress, unit="ep"):
                ep = record_episode(world, policy, seed + i, steps)
                ds.add(i, ep, split_for(i, val_every), seed + i)
                frames += len(ep)
        finally:
            world.close()
    repaired = sum(1 for i in todo if i in damaged)
    return RecordStats(len(todo), frames, episodes - len(todo), time.perf_counter() - t0, repaired)
