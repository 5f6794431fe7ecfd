import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from liveworld.common import LiveworldError
from liveworld.data.record import record, record_episode
from liveworld.data.shards import Dataset
from liveworld.data.worlds import make_world

WORLDS = ["doom:deathmatch", "atari:Breakout", "babyai:GoToRedBall-v0", "minigrid:Empty-8x8-v0"]


@pytest.mark.parametrize("world_name", WORLDS)
def test_tiny_episode_of_each_world_is_deterministic(world_name):
    world = make_world(world_name)
    try:
        a = record_episode(world, "explore", seed=3, steps=12)
        b = record_episode(world, "explore", seed=3, steps=12)
        c = record_episode(world, "random", seed=4, steps=12)
    finally:
        world.close()
    a.validate()
    assert 1 < len(a) <= 12
    for k in ("frames", "actions", "audio", "audio_offsets", "timestamps"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.text == b.text
    assert not np.array_equal(a.actions[: len(c)], c.actions[: len(a)]) or not np.array_equal(a.frames[:2], c.frames[:2])
    assert a.meta["world"] == world_name
    if world_name.startswith("doom"):
        assert a.frames.shape[1:] == (120, 160, 3)  # native 4:3
        assert a.audio.shape[1] == 2 and a.meta["sample_rate_hz"] == 22050
        assert set(np.diff(a.audio_offsets)) == {1260}  # 2 tics x 630 samples: skipped tics kept
        assert a.actions.shape[1] == 8 and a.meta["description"]
    elif world_name.startswith("atari"):
        assert a.frames.shape[1:] == (210, 160, 3)
        assert set(np.diff(a.audio_offsets)) == {4 * 512}  # every emulator frame's sound
    else:
        assert not a.has_audio and a.text and a.text[0][0] == 0  # the mission sentence


def test_doom_audio_is_not_silent():
    world = make_world("doom:deathmatch")
    try:
        ep = record_episode(world, "explore", seed=0, steps=60)
    finally:
        world.close()
    # libopenal1 present -> real sound; without it ViZDoom gives silence (setup installs it).
    assert np.abs(ep.audio.astype(np.int32)).max() > 0


def test_resume_after_crash_mid_shard(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    clean = tmp_path / "clean"
    record("babyai:GoToRedBall-v0", 3, 15, clean, "explore", seed=7, progress=False)

    real_add = Dataset.add
    calls = {"n": 0}

    def crashing_add(self, episode_id, ep, split, seed):
        calls["n"] += 1
        if calls["n"] == 2:  # die halfway through writing the second shard
            tmp = self.root / "shards" / ".ep_000001.npz.partial.tmp"
            tmp.write_bytes(b"PK\x03\x04 half a zip")
            raise KeyboardInterrupt
        return real_add(self, episode_id, ep, split, seed)

    monkeypatch.setattr(Dataset, "add", crashing_add)
    with pytest.raises(KeyboardInterrupt):
        record("babyai:GoToRedBall-v0", 3, 15, out, "explore", seed=7, progress=False)
    monkeypatch.setattr(Dataset, "add", real_add)
    assert Dataset.open(out).ids() == [0]
    stats = record("babyai:GoToRedBall-v0", 3, 15, out, "explore", seed=7, progress=False)
    assert stats.skipped == 1 and stats.episodes == 2
    assert not list((out / "shards").glob(".*.tmp"))
    a, b = Dataset.open(out), Dataset.open(clean)
    for i in range(3):
        np.testing.assert_array_equal(a.load(i).frames, b.load(i).frames)
        np.testing.assert_array_equal(a.load(i).actions, b.load(i).actions)


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "liveworld.cli", "record", "--world", "minigrid:Empty-8x8-v0",
           "--episodes", "400", "--steps", "40", "--out", str(out), "--seed", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        m = out / "manifest.json"
        if m.exists() and len(json.loads(m.read_text())["episodes"]) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = Dataset.open(out).ids()
    assert len(done) >= 2 and len(done) < 400
    for i in done:  # everything the manifest lists survived the kill
        Dataset.open(out).load(i)
    stats = record("minigrid:Empty-8x8-v0", len(done) + 2, 40, out, "explore", seed=1, progress=False)
    assert stats.skipped == len(done) and len(Dataset.open(out)) == len(done) + 2


def test_manifest_split_by_episode(tmp_path):
    record("minigrid:Empty-8x8-v0", 10, 5, tmp_path / "ds", "random", seed=0, val_every=5, progress=False)
    ds = Dataset.open(tmp_path / "ds")
    assert ds.ids("val") == [4, 9] and len(ds.ids("train")) == 8


@pytest.mark.parametrize("world, message", [
    ("doom", "must be FAMILY:NAME"),
    ("quake:e1m1", "must be FAMILY:NAME"),
    ("doom:nosuchmap", "unknown Doom scenario 'nosuchmap'"),
    ("atari:NoSuchGame", "no Atari ROM named 'NoSuchGame'"),
    ("minigrid:NoSuch-v0", "unknown minigrid environment"),
])
def test_bad_worlds(world, message):
    with pytest.raises(LiveworldError, match=message):
        make_world(world)


def test_bad_record_arguments(tmp_path):
    with pytest.raises(LiveworldError, match="must be positive"):
        record("minigrid:Empty-8x8-v0", 0, 5, tmp_path / "ds")
    with pytest.raises(LiveworldError, match="unknown policy"):
        record("minigrid:Empty-8x8-v0", 1, 5, tmp_path / "ds2", policy="telepathy")


def test_revisit_routes_come_back_and_poses_are_kept(tmp_path):
    from liveworld.eval.revisit import find_revisits

    world = make_world("doom:deathmatch")
    try:
        ep = record_episode(world, "revisit", seed=1000300, steps=200)
        again = record_episode(world, "revisit", seed=1000300, steps=200)
    finally:
        world.close()
    assert ep.pose is not None and ep.pose.shape == (len(ep), 3) and ep.pose.dtype == np.float32
    np.testing.assert_array_equal(ep.actions, again.actions)
    gaps = [t - s for s, t in find_revisits(ep.pose)]
    assert gaps and min(gaps) >= 32  # a route came back to a view seen at least 32 frames before
    Dataset.create_or_resume(tmp_path / "ds", {"world": "doom:deathmatch"}).add(0, ep, "train", 1000300)
    np.testing.assert_array_equal(Dataset.open(tmp_path / "ds").load(0).pose, ep.pose)  # stored, no pickle


def test_revisit_policy_names_what_a_world_lacks():
    world = make_world("atari:Breakout")
    try:
        with pytest.raises(LiveworldError, match="revisit policy needs"):
            record_episode(world, "revisit", seed=0, steps=5)
    finally:
        world.close()


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liveworld.cli", *args], capture_output=True, text=True, **kw)


def test_a_truncated_shard_is_reported_and_repaired_by_the_command_data_info_prints(tmp_path):
    out = tmp_path / "ds"
    record("minigrid:Empty-8x8-v0", 4, 12, out, "explore", seed=5, progress=False)
    shard = Dataset.open(out).shard_path(2)
    original = shard.read_bytes()
    shard.write_bytes(original[: len(original) // 2])  # a disk that filled up, a copy cut short
    (out / "shards" / "ep_000003.npz").unlink()  # and one lost altogether
    info = _cli("data", "info", str(out))
    assert info.returncode == 1 and "2 episode(s) missing or corrupt" in info.stderr
    dry = _cli("train", "--preset", "tiny", "--data", str(out), "--dry-run")
    assert dry.returncode != 0 and "missing or corrupt" in dry.stderr and "--repair" in dry.stderr
    repair = info.stderr.strip().splitlines()[-1].split()
    assert repair[0] == "liveworld"
    fixed = _cli(*repair[1:])
    assert fixed.returncode == 0 and "2 of them missing or corrupt before" in fixed.stdout, fixed.stderr
    assert shard.read_bytes() == original  # bit for bit what a clean run wrote
    assert _cli("data", "info", str(out)).returncode == 0


def test_repair_finds_corruption_the_quick_check_cannot_see(tmp_path):
    out = tmp_path / "ds"
    record("minigrid:Empty-8x8-v0", 2, 12, out, "explore", seed=5, progress=False)
    shard = Dataset.open(out).shard_path(1)
    original = bytearray(shard.read_bytes())
    bad = bytearray(original)
    bad[len(bad) // 3] ^= 0xFF  # one flipped byte inside a compressed array: same size, same zip directory
    shard.write_bytes(bytes(bad))
    assert record("minigrid:Empty-8x8-v0", 2, 12, out, "explore", seed=5, progress=False).episodes == 0
    stats = record("minigrid:Empty-8x8-v0", 2, 12, out, "explore", seed=5, progress=False, repair=True)
    assert stats.repaired == 1 and shard.read_bytes() == bytes(original)


def test_a_killed_recorder_leaves_no_game_or_shared_memory_after_the_next_run(tmp_path):
    from liveworld.data.worlds.doom import SHM_DIR, tagged_games

    out = tmp_path / "ds"
    cmd = ["record", "--world", "doom:deathmatch", "--episodes", "50", "--steps", "400", "--out", str(out), "--seed", "3"]
    proc = subprocess.Popen([sys.executable, "-m", "liveworld.cli", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    owner = str(out.resolve())
    deadline = time.time() + 60
    while time.time() < deadline and not tagged_games(owner):
        time.sleep(0.1)  # tagged_games skips only this process's own children: the recorder's game shows
    games = tagged_games(owner)
    assert games, "the recorder's game should be running and tagged"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    instance = games[0][1]
    assert tagged_games(owner), "a SIGKILLed recorder leaves its game running (the leak this guards against)"
    assert list(SHM_DIR.glob(f"ViZDoom*{instance}"))
    done = len(Dataset.open(out)) if (out / "manifest.json").exists() else 0
    res = _cli(*cmd[:4], str(done + 1), *cmd[5:])
    assert res.returncode == 0, res.stderr
    assert not tagged_games(owner) and not list(SHM_DIR.glob(f"ViZDoom*{instance}"))


def test_two_recorders_cannot_write_one_data_set(tmp_path):
    from liveworld.data.shards import writer_lock

    with writer_lock(tmp_path / "ds"):
        with pytest.raises(LiveworldError, match="another process is writing"):
            record("minigrid:Empty-8x8-v0", 1, 5, tmp_path / "ds", progress=False)
