"""Action encodings: a world's integer action rows <-> the float vectors the world model reads.

Shape legend: T frames, A the episode's action width (`ActionSpace.width`), n the vector width.
    buttons   [T, A] of 0/1, several pressed at once  <->  multi-hot [T, n], n = A
    discrete  [T, 1] index into the names             <->  one-hot   [T, n], n = len(names)
    none      [T, 0] (plain videos)                   <->  [T, 0]
Decoding thresholds buttons at 0.5 and takes the argmax for discrete actions, so the vectors a
model produces (or a player's keys) come back as valid actions.

`ActionUnion` puts several worlds' spaces side by side in one vector (one model, many worlds);
`compose` joins held parts of a discrete world's action names into the name the game knows.

This module knows action spaces, not worlds, models or keyboards (the browser's keys: serve/keys.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from liveworld.common import LiveworldError
from liveworld.data.episode import ACTION_KINDS, ActionSpace

IDLE_NAMES = ("NOOP", "done")  # what a discrete world does when no key is held (MiniGrid has no NOOP; "done" does nothing)


def name_parts(name: str) -> list[str]:
    """UPRIGHTFIRE -> [UP, RIGHT, FIRE]; a name that is no joystick move is its own part."""
    out, rest = [], name
    while rest:
        for p in ("UP", "DOWN", "LEFT", "RIGHT", "FIRE"):
            if rest.startswith(p):
                out.append(p)
                rest = rest[len(p):]
                break
        else:
            return [name]
    return out


def compose(held: Sequence[str], names: Sequence[str]) -> list[str]:
    """The held parts as one action of a discrete world: their joystick name if the game has it
    (UP + FIRE -> UPFIRE), else the first held part that is an action, else the idle action."""
    order = ("UP", "DOWN", "LEFT", "RIGHT", "FIRE")
    joined = "".join(p for p in order if p in held)
    if joined in names:
        return [joined]
    for h in held:
        if h in names:
            return [h]
    idle = next((n for n in IDLE_NAMES if n in names), names[0])
    return [idle]


class ActionEncoder:
    def __init__(self, space: ActionSpace):
        if space.kind not in ACTION_KINDS:
            raise LiveworldError(f"action kind {space.kind!r} is not one of {ACTION_KINDS}")
        if space.kind == "none" and space.names:
            raise LiveworldError(f"an action space of kind 'none' has no names, got {space.names}")
        if space.kind != "none" and not space.names:
            raise LiveworldError(f"a {space.kind!r} action space needs at least one name")
        if len(set(space.names)) != len(space.names):
            raise LiveworldError(f"action names must be distinct, got {space.names}")
        self.space = space

    @property
    def kind(self) -> str:
        return self.space.kind

    @property
    def width(self) -> int:
        """n, the width of an encoded vector."""
        return 0 if self.kind == "none" else len(self.space.names)

    def encode(self, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """int [T, A] -> float32 [T, n]."""
        a = torch.as_tensor(np.asarray(actions) if not isinstance(actions, torch.Tensor) else actions)
        A = self.space.width
        if a.ndim != 2 or a.shape[1] != A or a.is_floating_point():
            raise LiveworldError(f"{self.kind} actions must be integers [T, {A}], got {a.dtype} {list(a.shape)}")
        if self.kind == "none":
            return torch.zeros(a.shape[0], 0)
        if self.kind == "buttons":
            if ((a != 0) & (a != 1)).any():
                raise LiveworldError(f"button actions must be 0 or 1, got values {sorted(set(a.unique().tolist()) - {0, 1})[:5]}")
            return a.float()
        n = len(self.space.names)
        if ((a < 0) | (a >= n)).any():
            raise LiveworldError(f"discrete actions must be indices 0..{n - 1} into {self.space.names}, got {a.min().item()}..{a.max().item()}")
        return torch.nn.functional.one_hot(a[:, 0].long(), n).float()

    def decode(self, vectors: torch.Tensor | np.ndarray) -> torch.Tensor:
        """float [T, n] -> int32 [T, A]: buttons pressed where > 0.5, discrete by argmax."""
        v = torch.as_tensor(vectors)
        if v.ndim != 2 or v.shape[1] != self.width:
            raise LiveworldError(f"{self.kind} action vectors must be [T, {self.width}], got {list(v.shape)}")
        if self.kind == "none":
            return torch.zeros(v.shape[0], 0, dtype=torch.int32)
        if self.kind == "buttons":
            return (v > 0.5).to(torch.int32)
        return v.argmax(1, keepdim=True).to(torch.int32)

    def from_names(self, names: Sequence[str]) -> np.ndarray:
        """Pressed button names -> one action row, int32 [A]. For a discrete space at most one
        name; none pressed is index 0, as `World.encode_names` does (ALE's NOOP)."""
        if self.kind == "none":
            if names:
                raise LiveworldError(f"this world has no actions (kind 'none'), got {list(names)}; send no buttons")
            return np.zeros(0, np.int32)
        unknown = [n for n in names if n not in self.space.names]
        if unknown:
            raise LiveworldError(f"unknown action name(s) {unknown}; this world's are {self.space.names}")
        if self.kind == "buttons":
            row = np.zeros(len(self.space.names), np.int32)
            for n in names:
                row[self.space.names.index(n)] = 1
            return row
        if len(set(names)) > 1:
            raise LiveworldError(f"a discrete action space takes one action at a time, got {list(names)}")
        return np.array([self.space.names.index(names[0]) if names else 0], np.int32)

    def no_action(self) -> np.ndarray:
        """The all-zero row that frame 0 of every episode carries."""
        return np.zeros(self.space.width, np.int32)

    def to_dict(self) -> dict:
        return self.space.to_dict()

    @classmethod
    def from_dict(cls, d: dict) -> "ActionEncoder":
        if not isinstance(d, dict) or "kind" not in d or "names" not in d:
            raise LiveworldError(f"an action space is a dict with 'kind' and 'names', got {d!r}")
        return cls(ActionSpace.from_dict(d))


class ActionUnion:
    """Several worlds' action spaces as one vector, for one model over many worlds: each distinct
    action space owns the columns offset .. offset + n of a vector of width sum(n), in the order
    the worlds are given, and a world's actions fill its space's columns, leaving the others at
    0. Worlds with the same space (two Doom scenarios) share its columns, so Doom's ATTACK is one
    row of the model's action table wherever it is pressed, and Atari's FIRE another.

        union = ActionUnion({"doom:deathmatch": doom_space, "atari:Breakout": atari_space})
        v = union.encode("atari:Breakout", actions)     # int [T, A_w] -> float [T, width]
        union.decode("atari:Breakout", v)               # -> the same int [T, A_w]
    """

    def __init__(self, spaces: dict[str, ActionSpace]):
        if not spaces:
            raise LiveworldError("an action union needs at least one world")
        self.encoders = {w: ActionEncoder(s) for w, s in spaces.items()}
        self.offsets: dict[str, int] = {}
        seen: dict[str, int] = {}
        at = 0
        for w, enc in self.encoders.items():
            key = repr(sorted(enc.to_dict().items()))
            if key not in seen:
                seen[key] = at
                at += enc.width
            self.offsets[w] = seen[key]
        self.width = at

    def block(self, world: str) -> slice:
        if world not in self.encoders:
            raise LiveworldError(f"world {world!r} is not in this model; its worlds are {list(self.encoders)}")
        return slice(self.offsets[world], self.offsets[world] + self.encoders[world].width)

    def encode(self, world: str, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """int [T, A_w] of `world` -> float32 [T, width], zero outside the world's columns."""
        cols = self.block(world)  # an unknown world fails here, naming the known ones
        own = self.encoders[world].encode(actions)
        out = torch.zeros(own.shape[0], self.width)
        out[:, cols] = own
        return out

    def decode(self, world: str, vectors: torch.Tensor | np.ndarray) -> torch.Tensor:
        """float [T, width] -> int32 [T, A_w] of `world` (its columns only)."""
        cols = self.block(world)
        v = torch.as_tensor(vectors)
        if v.ndim != 2 or v.shape[1] != self.width:
            raise LiveworldError(f"union action vectors must be [T, {self.width}], got {list(v.shape)}")
        return self.encoders[world].decode(v[:, cols])

    def for_world(self, world: str) -> "UnionActions":
        return UnionActions(self, world)

    def to_dict(self) -> dict:
        return {w: enc.to_dict() for w, enc in self.encoders.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ActionUnion":
        return cls({w: ActionSpace.from_dict(s) for w, s in d.items()})


class UnionActions(ActionEncoder):
    """One world's actions as a model over several worlds reads them: the world's own names and
    rows (`from_names`, `no_action`, `space`), vectors in the union's width (`encode`, `decode`).
    A drop-in for the ActionEncoder of a one-world model."""

    def __init__(self, union: ActionUnion, world: str):
        union.block(world)  # an unknown world fails here, naming the known ones
        super().__init__(union.encoders[world].space)
        self.union, self.world = union, world

    @property
    def width(self) -> int:
        return self.union.width

    def encode(self, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.union.encode(self.world, actions)

    def decode(self, vectors: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.union.decode(self.world, vectors)
