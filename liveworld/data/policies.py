"""Policies that drive a world while it is recorded.

`random`: an independent random action every step (each button pressed with p = 0.25, or a
uniform discrete index). `explore`: what a curious player does: hold a macro (forward, turn
while walking, strafe, shoot, open doors) for a few steps, weighted towards moving forward,
and turn away when the view stops changing (stuck against a wall).

A policy is seeded per episode, so the same seed and policy give the same actions; it knows
only the world's action space and macros, never the simulator.
"""

from __future__ import annotations

import numpy as np

from liveworld.common import LiveworldError
from liveworld.data.worlds.base import Obs, World

POLICIES = ("random", "explore")


class RandomPolicy:
    def __init__(self, world: World, seed: int):
        self.world, self.rng = world, np.random.default_rng(seed)

    def act(self, obs: Obs) -> np.ndarray:
        space = self.world.action_space
        if space.kind == "buttons":
            return (self.rng.random(len(space.names)) < 0.25).astype(np.int32)
        return np.array([self.rng.integers(len(space.names))], np.int32)


class ExplorePolicy:
    STUCK_STEPS = 3
    STUCK_PIXEL_DELTA = 1.0  # mean |frame difference| in 0..255 below which the view "did not move"
    STUCK_DISTANCE = 2.0  # map units moved per step below which a walking player is "stuck"

    def __init__(self, world: World, seed: int):
        if not world.explore_macros:
            raise LiveworldError(f"world {world.name} defines no exploring macros; use --policy random")
        self.world, self.rng = world, np.random.default_rng(seed)
        weights = np.array([m[0] for m in world.explore_macros], np.float64)
        self.probs = weights / weights.sum()
        self.current = world.no_action()
        self.left = 0
        self.still = 0
        self.prev_frame: np.ndarray | None = None
        self.prev_pos: tuple[float, ...] | None = None

    def _walking(self) -> bool:
        space = self.world.action_space
        if space.kind != "buttons":
            return True
        return any(self.current[space.names.index(n)] for n in space.names if n.startswith("MOVE_"))

    def _pick(self, exclude_moving: bool = False) -> None:
        macros = self.world.explore_macros
        probs = self.probs.copy()
        if exclude_moving:  # stuck: only macros that turn the view
            probs *= np.array([any("TURN" in n or n in ("left", "right") for n in m[1]) for m in macros], np.float64)
            if probs.sum() == 0:
                probs = self.probs.copy()
            probs /= probs.sum()
        i = int(self.rng.choice(len(macros), p=probs))
        _, names, (lo, hi) = macros[i]
        self.current = self.world.encode_names(names)
        self.left = int(self.rng.integers(lo, hi + 1))

    def act(self, obs: Obs) -> np.ndarray:
        if obs.position is not None and self.prev_pos is not None:
            # Walking into a wall still bobs the view, so position is the better signal.
            moved = float(np.hypot(*np.subtract(obs.position[:2], self.prev_pos[:2])))
            walking = self._walking()
            self.still = self.still + 1 if walking and moved < self.STUCK_DISTANCE else 0
        elif obs.position is None and self.prev_frame is not None and self.prev_frame.shape == obs.frame.shape:
            delta = np.abs(obs.frame.astype(np.int16) - self.prev_frame).mean()
            self.still = self.still + 1 if delta < self.STUCK_PIXEL_DELTA else 0
        self.prev_frame = obs.frame.astype(np.int16) if obs.position is None else None
        self.prev_pos = obs.position
        if self.still >= self.STUCK_STEPS:
            self.still = 0
            self._pick(exclude_moving=True)
        elif self.left <= 0:
            self._pick()
        self.left -= 1
        return self.current.copy()


def make_policy(name: str, world: World, seed: int):
    if name == "random":
        return RandomPolicy(world, seed)
    if name == "explore":
        return ExplorePolicy(world, seed)
    raise LiveworldError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
