"""The one episode schema shared by every world and every ingested video.

An episode is T frames. Frame 0 is the observation after reset; for t >= 1, `actions[t]` is the
action that led from frame t-1 to frame t and `audio` of frame t is the sound produced during
that transition (all of it: with frame skipping the audio of every skipped tic is kept).
`actions[0]` is the all-zero "no action".

Fields (T frames, H x W native size, A action width, S audio samples in all, C audio channels):
    frames        uint8   [T, H, W, 3]   RGB, native size, never resized or cropped here
    actions       int32   [T, A]         buttons: 0/1 per button; discrete: A = 1, the index
    audio         int16   [S, C]         all samples of the episode, concatenated
    audio_offsets int64   [T + 1]        frame t's audio is audio[audio_offsets[t]:audio_offsets[t+1]]
    timestamps    float64 [T]            seconds since the episode started
    text          list of (frame, str)   notifications / captions, at the frame they appear
    meta          dict                   world, fps, sample_rate_hz, action_space, description...
    pose          float32 [T, 3] or None where the player is (x, y in map units, view angle in
                                         degrees), if the simulator says: for evaluation only
                                         (finding revisits), never a model input

This module knows the schema and its checks; it does not know how episodes are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveworld.common import LiveworldError

ACTION_KINDS = ("buttons", "discrete", "none")


@dataclass
class ActionSpace:
    """What the integers in `actions` mean.

    kind "buttons": a binary vector, one entry per name (several may be pressed at once).
    kind "discrete": one index into `names` per frame (A = 1).
    kind "none": the source has no actions (plain videos); A = 0.
    """

    kind: str
    names: list[str]

    @property
    def width(self) -> int:
        return {"buttons": len(self.names), "discrete": 1, "none": 0}[self.kind]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> "ActionSpace":
        return cls(kind=d["kind"], names=list(d["names"]))


@dataclass
class Episode:
    frames: np.ndarray
    actions: np.ndarray
    timestamps: np.ndarray
    audio: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int16))
    audio_offsets: np.ndarray | None = None
    text: list[tuple[int, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    pose: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.audio_offsets is None:
            self.audio_offsets = np.zeros(len(self.frames) + 1, np.int64)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def action_space(self) -> ActionSpace:
        return ActionSpace.from_dict(self.meta["action_space"])

    @property
    def has_audio(self) -> bool:
        return self.audio.shape[0] > 0

    def frame_audio(self, t: int) -> np.ndarray:
        """The audio samples of frame t, int16 [S_t, C]."""
        return self.audio[self.audio_offsets[t] : self.audio_offsets[t + 1]]

    def frame_texts(self) -> list[str]:
        """Each frame's text: the latest text event at or before it, else the description."""
        texts, current = [], self.meta.get("description", "")
        events = dict(self.text)
        for t in range(len(self)):
            current = events.get(t, current)
            texts.append(current)
        return texts

    def modalities(self) -> list[str]:
        mods = ["video"]
        if self.has_audio:
            mods.append("audio")
        if self.action_space.kind != "none":
            mods.append("action")
        if self.text or self.meta.get("description"):
            mods.append("text")
        return mods

    def validate(self, name: str = "episode") -> "Episode":
        """Checks shapes and dtypes; raises LiveworldError naming the first problem."""

        def bad(msg: str) -> LiveworldError:
            return LiveworldError(f"{name}: {msg}")

        T = len(self.frames)
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise bad(f"frames must be uint8 [T, H, W, 3], got {self.frames.dtype} {self.frames.shape}")
        if T == 0:
            raise bad("episode has no frames")
        for key in ("world", "fps", "action_space"):
            if key not in self.meta:
                raise bad(f"meta lacks the key {key!r}")
        space = self.action_space
        if space.kind not in ACTION_KINDS:
            raise bad(f"action kind {space.kind!r} is not one of {ACTION_KINDS}")
        if self.actions.shape != (T, space.width):
            raise bad(f"actions must be [{T}, {space.width}], got {list(self.actions.shape)}")
        if self.timestamps.shape != (T,):
            raise bad(f"timestamps must be [{T}], got {list(self.timestamps.shape)}")
        if self.audio.dtype != np.int16 or self.audio.ndim != 2:
            raise bad(f"audio must be int16 [S, C], got {self.audio.dtype} {self.audio.shape}")
        offs = self.audio_offsets
        if offs.shape != (T + 1,) or offs[0] != 0 or offs[-1] != len(self.audio) or np.any(np.diff(offs) < 0):
            raise bad("audio_offsets must be non-decreasing [T + 1], from 0 to the number of samples")
        if self.has_audio and "sample_rate_hz" not in self.meta:
            raise bad("an episode with audio needs meta['sample_rate_hz']")
        for item in self.text:
            if not (0 <= item[0] < T and isinstance(item[1], str)):
                raise bad(f"text entry {item!r} must be (frame index < {T}, str)")
        if self.pose is not None and (self.pose.shape != (T, 3) or self.pose.dtype != np.float32):
            raise bad(f"pose must be float32 [{T}, 3] (x, y, angle), got {self.pose.dtype} {list(self.pose.shape)}")
        return self


def concat_audio(chunks: list[np.ndarray], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame audio chunks -> (audio [S, C] int16, offsets [T + 1])."""
    lengths = [len(c) for c in chunks]
    offsets = np.zeros(len(chunks) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    audio = np.concatenate(chunks, 0).astype(np.int16) if chunks and offsets[-1] else np.zeros((0, channels), np.int16)
    return audio.reshape(-1, channels), offsets
