"""Sharded, compressed, resumable episode storage.

A dataset is a directory:
    manifest.json          the episodes, their shard files, frame counts and train/val split
    shards/ep_000012.npz   one episode per shard: zip-deflate compressed numpy arrays (lossless)

Shards and the manifest are written atomically (temporary file + rename), so a kill at any
moment leaves every finished episode intact; the manifest is rewritten after each episode.
A shard that fails to load (truncated, corrupt) gives a LiveworldError naming the file and what
to do; the other episodes stay readable.

This module knows the schema's storage, not where episodes come from.
"""

from __future__ import annotations

import fcntl
import json
import os
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from liveworld.common import LiveworldError, atomic_path, read_json, write_json_atomic
from liveworld.data.episode import Episode

MANIFEST = "manifest.json"
LOCK = ".writer.lock"  # held by the process writing the data set (record, ingest)
SCHEMA_VERSION = 1
_ARRAYS = ("frames", "actions", "timestamps", "audio", "audio_offsets")


def write_episode(path: str | Path, ep: Episode) -> int:
    """Writes one episode shard atomically; returns its size in bytes."""
    ep.validate(str(path))
    payload = {k: getattr(ep, k) for k in _ARRAYS}
    # Strings as numpy unicode scalars so that loading needs no pickle.
    payload["meta_json"] = np.array(json.dumps(ep.meta))
    payload["text_json"] = np.array(json.dumps([[int(f), s] for f, s in ep.text]))
    if ep.pose is not None:
        payload["pose"] = ep.pose
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **payload)
    return Path(path).stat().st_size


def read_episode(path: str | Path) -> Episode:
    path = Path(path)
    if not path.exists():
        raise LiveworldError(f"shard {path} is missing; run `liveworld data info {path.parent.parent}` to list what is there")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _ARRAYS}
            meta = json.loads(str(z["meta_json"]))
            text = [(int(f), s) for f, s in json.loads(str(z["text_json"]))]
            pose = z["pose"] if "pose" in z.files else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError) as e:
        raise LiveworldError(
            f"shard {path} is corrupt or truncated ({type(e).__name__}: {e}). Run the same `liveworld record` "
            f"command again to re-record it (it re-records every missing or corrupt episode)"
        ) from e
    return Episode(text=text, meta=meta, pose=pose, **arrays).validate(str(path))


@dataclass
class EpisodeEntry:
    id: int
    file: str
    frames: int
    split: str
    seed: int | None
    bytes: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def split_for(episode_id: int, val_every: int) -> str:
    """Split by episode: every `val_every`-th episode (ids 0, val_every, ...) is validation."""
    return "val" if val_every > 0 and episode_id % val_every == val_every - 1 else "train"


class Dataset:
    """A dataset directory: its manifest and episode shards."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.header: dict = {}
        self.entries: dict[int, EpisodeEntry] = {}

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path) -> "Dataset":
        ds = cls(root)
        if not ds.root.is_dir():
            raise LiveworldError(f"dataset directory {ds.root} does not exist; record one with `liveworld record` or `liveworld ingest`")
        mpath = ds.root / MANIFEST
        if not mpath.exists():
            raise LiveworldError(f"{ds.root} is not a liveworld dataset (no {MANIFEST}); record one with `liveworld record --out {ds.root}`")
        m = read_json(mpath, "manifest")
        if not isinstance(m, dict) or "episodes" not in m:
            raise LiveworldError(f"manifest {mpath} has no 'episodes' list; it was not written by liveworld")
        ds.header = {k: v for k, v in m.items() if k != "episodes"}
        for e in m["episodes"]:
            entry = EpisodeEntry(**e)
            ds.entries[entry.id] = entry
        return ds

    @classmethod
    def create_or_resume(cls, root: str | Path, header: dict) -> "Dataset":
        """Opens an existing dataset made with the same header, or starts a new one.

        Leftover temporary files of a killed writer are removed. A shard the manifest does not
        list (killed between the shard's rename and the manifest's) is simply re-recorded.
        """
        root = Path(root)
        if (root / MANIFEST).exists():
            ds = cls.open(root)
            for key, value in header.items():
                if key in ds.header and ds.header[key] != value:
                    raise LiveworldError(
                        f"{root} already holds a dataset with {key}={ds.header[key]!r}, not {value!r}; "
                        f"choose another --out directory or repeat the original command to resume it"
                    )
        else:
            if root.exists() and any(p.name != LOCK for p in root.iterdir()):
                raise LiveworldError(f"{root} exists, is not empty and has no {MANIFEST}; choose an empty --out directory")
            ds = cls(root)
            ds.header = {"schema_version": SCHEMA_VERSION, **header}
        (root / "shards").mkdir(parents=True, exist_ok=True)
        for tmp in (root / "shards").glob(".*.tmp"):
            tmp.unlink()
        return ds

    # -- writing ---------------------------------------------------------------------------
    def shard_path(self, episode_id: int) -> Path:
        return self.root / "shards" / f"ep_{episode_id:06d}.npz"

    def add(self, episode_id: int, ep: Episode, split: str, seed: int | None) -> EpisodeEntry:
        path = self.shard_path(episode_id)
        nbytes = write_episode(path, ep)
        entry = EpisodeEntry(episode_id, str(path.relative_to(self.root)), len(ep), split, seed, nbytes)
        self.entries[episode_id] = entry
        self.save_manifest()
        return entry

    def save_manifest(self) -> None:
        episodes = [self.entries[i].to_dict() for i in sorted(self.entries)]
        write_json_atomic(self.root / MANIFEST, {**self.header, "episodes": episodes})

    # -- reading ---------------------------------------------------------------------------
    def ids(self, split: str | None = None) -> list[int]:
        return [i for i in sorted(self.entries) if split is None or self.entries[i].split == split]

    def load(self, episode_id: int) -> Episode:
        if episode_id not in self.entries:
            raise LiveworldError(f"{self.root} has no episode {episode_id}")
        return read_episode(self.root / self.entries[episode_id].file)

    def episodes(self, split: str | None = None, skip_corrupt: bool = False) -> Iterator[Episode]:
        for i in self.ids(split):
            try:
                yield self.load(i)
            except LiveworldError:
                if not skip_corrupt:
                    raise

    def __len__(self) -> int:
        return len(self.entries)

    def damaged(self, full: bool = False) -> dict[int, str]:
        """Episodes whose shard is missing or corrupt: {id: why}. The quick check (the default,
        cheap enough before every `train` and `record`) compares each shard's size with the
        manifest's and reads its zip directory, which catches missing and truncated shards;
        `full` also decompresses every array and checks its CRC and schema."""
        bad = {}
        for i in self.ids():
            entry = self.entries[i]
            path = self.root / entry.file
            try:
                if full:
                    read_episode(path)
                    continue
                if not path.exists():
                    raise LiveworldError(f"shard {path} is missing")
                size = path.stat().st_size
                if size != entry.bytes:
                    raise LiveworldError(f"shard {path} has {size:,} bytes, the manifest says {entry.bytes:,} (truncated?)")
                with zipfile.ZipFile(path) as z:
                    missing = {f"{k}.npy" for k in _ARRAYS} - set(z.namelist())
                if missing:
                    raise LiveworldError(f"shard {path} lacks {sorted(missing)}")
            except (zipfile.BadZipFile, OSError) as e:  # OSError: unreadable, or a directory where the shard should be
                bad[i] = f"shard {path} is corrupt, truncated or unreadable ({e})"
            except LiveworldError as e:
                bad[i] = str(e).split(". Run the same")[0]
        return bad


@contextmanager
def writer_lock(root: str | Path):
    """Holds an exclusive lock on a data set directory (created if needed) while writing it. The
    lock dies with its process, even under kill -9, so whoever takes it next knows no other
    writer is alive (and can clean up what a killed one left)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LiveworldError(f"another process is writing {root} (liveworld record or ingest); wait for it or stop it") from None
        yield
    finally:
        os.close(fd)
