"""What every recordable world provides: reset/step returning an observation, its action space,
its frame rate and audio format, and the macro-actions an exploring policy should try.

Worlds know their simulator; they know nothing about storage or policies' randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from liveworld.data.episode import ActionSpace


@dataclass
class Obs:
    frame: np.ndarray  # uint8 [H, W, 3], native size
    audio: np.ndarray  # int16 [S, C], the sound since the previous observation (S may be 0)
    text: str | None = None  # a notification or caption that appears at this frame
    done: bool = False
    # where the player is, if the simulator says: (x, y, view angle in degrees). Policies use it
    # (stuck? turned far enough?) and episodes keep it for evaluation, never as model input.
    position: tuple[float, ...] | None = None


@dataclass
class World:
    """Base class: subclasses fill the fields and implement reset/step/close."""

    name: str
    action_space: ActionSpace
    fps: float
    description: str
    sample_rate_hz: int | None = None
    audio_channels: int = 1
    # (weight, button names held together, hold length range): what an exploring player tries.
    explore_macros: list[tuple[float, tuple[str, ...], tuple[int, int]]] = field(default_factory=list)

    def reset(self, seed: int) -> Obs:
        raise NotImplementedError

    def step(self, action: np.ndarray) -> Obs:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def no_action(self) -> np.ndarray:
        return np.zeros(self.action_space.width, np.int32)

    def encode_names(self, names: tuple[str, ...]) -> np.ndarray:
        """Button names -> this world's action row (a binary vector, or a discrete index)."""
        space = self.action_space
        if space.kind == "buttons":
            row = np.zeros(len(space.names), np.int32)
            for n in names:
                row[space.names.index(n)] = 1
            return row
        return np.array([space.names.index(names[0]) if names else 0], np.int32)

    def meta(self) -> dict:
        m = {
            "world": self.name,
            "fps": self.fps,
            "action_space": self.action_space.to_dict(),
            "description": self.description,
            "audio_channels": self.audio_channels,
        }
        if self.sample_rate_hz:
            m["sample_rate_hz"] = self.sample_rate_hz
        return m
