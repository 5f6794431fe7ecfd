import json

import numpy as np
import pytest

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace, Episode, concat_audio
from liveworld.data.info import dataset_info
from liveworld.data.shards import Dataset, read_episode, write_episode


def make_episode(T=5, H=12, W=16, seed=0, audio=True) -> Episode:
    rng = np.random.default_rng(seed)
    chunks = [rng.integers(-2000, 2000, (7 + t % 2, 2)).astype(np.int16) for t in range(T)] if audio else []
    audio_arr, offs = concat_audio(chunks, 2) if audio else (np.zeros((0, 2), np.int16), None)
    meta = {"world": "test:x", "fps": 10.0, "action_space": ActionSpace("buttons", ["A", "B", "C"]).to_dict(),
            "description": "a test world", "sample_rate_hz": 70}
    return Episode(rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8), rng.integers(0, 2, (T, 3)).astype(np.int32),
                   np.arange(T) / 10.0, audio_arr, offs, [(0, "hello"), (3, "héllo wörld")], meta)


def assert_same(a: Episode, b: Episode) -> None:
    for k in ("frames", "actions", "timestamps", "audio", "audio_offsets"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert getattr(a, k).dtype == getattr(b, k).dtype
    assert a.text == b.text and a.meta == b.meta


def test_schema_round_trip(tmp_path):
    ep = make_episode()
    write_episode(tmp_path / "ep.npz", ep)
    back = read_episode(tmp_path / "ep.npz")
    assert_same(ep, back)
    assert back.frame_audio(1).shape == (8, 2)
    assert back.modalities() == ["video", "audio", "action", "text"]


def test_episode_without_audio_round_trips(tmp_path):
    ep = make_episode(audio=False)
    write_episode(tmp_path / "ep.npz", ep)
    back = read_episode(tmp_path / "ep.npz")
    assert not back.has_audio and "audio" not in back.modalities()


@pytest.mark.parametrize("mutate, message", [
    (lambda e: setattr(e, "frames", e.frames.astype(np.float32)), "frames must be uint8"),
    (lambda e: setattr(e, "actions", e.actions[:, :2]), "actions must be"),
    (lambda e: setattr(e, "timestamps", e.timestamps[:-1]), "timestamps"),
    (lambda e: e.meta.pop("fps"), "fps"),
    (lambda e: setattr(e, "text", [(99, "late")]), "text entry"),
    (lambda e: setattr(e, "audio_offsets", e.audio_offsets[::-1].copy()), "audio_offsets"),
])
def test_validation_names_the_problem(tmp_path, mutate, message):
    ep = make_episode()
    mutate(ep)
    with pytest.raises(LiveworldError, match=message):
        write_episode(tmp_path / "ep.npz", ep)
    assert not (tmp_path / "ep.npz").exists()


def make_dataset(root, n=3) -> Dataset:
    ds = Dataset.create_or_resume(root, {"world": "test:x"})
    for i in range(n):
        ds.add(i, make_episode(seed=i), "val" if i == n - 1 else "train", seed=i)
    return ds


def test_corrupt_shard_is_named_and_the_rest_stays_readable(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    shard = tmp_path / "ds" / ds.entries[1].file
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # truncated
    ds = Dataset.open(tmp_path / "ds")
    with pytest.raises(LiveworldError, match=r"ep_000001\.npz is corrupt or truncated"):
        ds.load(1)
    assert len(ds.load(0)) == 5 and len(ds.load(2)) == 5
    assert len(list(ds.episodes(skip_corrupt=True))) == 2
    info = dataset_info(tmp_path / "ds")
    assert info["episodes"] == 2 and len(info["corrupt"]) == 1 and "ep_000001" in info["corrupt"][0]


def test_info_keys(tmp_path):
    make_dataset(tmp_path / "ds")
    info = dataset_info(tmp_path / "ds")
    assert info["episodes"] == 3 and info["frames"] == 15
    assert info["modalities"] == ["video", "audio", "action", "text"]
    assert info["frame_sizes"] == {"16x12": 15}
    assert info["splits"] == {"train": 2, "val": 1}
    json.dumps(info)


def test_bad_dataset_directories(tmp_path):
    with pytest.raises(LiveworldError, match="does not exist"):
        Dataset.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LiveworldError, match="not a liveworld dataset"):
        Dataset.open(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(LiveworldError, match="not valid JSON"):
        Dataset.open(tmp_path / "bad")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    with pytest.raises(LiveworldError, match="not empty"):
        Dataset.create_or_resume(tmp_path / "full", {"world": "test:x"})
    make_dataset(tmp_path / "ds")
    with pytest.raises(LiveworldError, match="already holds a dataset with world='test:x'"):
        Dataset.create_or_resume(tmp_path / "ds", {"world": "test:y"})
    with pytest.raises(LiveworldError, match="is missing"):
        read_episode(tmp_path / "ds" / "shards" / "ep_000099.npz")
