"""Policies that drive a world while it is recorded.

`random`: an independent random action every step (each button pressed with p = 0.25, or a
uniform discrete index). `explore`: what a curious player does: hold a macro (forward, turn
while walking, strafe, shoot, open doors) for a few steps, weighted towards moving forward,
and turn away when the view stops changing (stuck against a wall). `revisit`: routes that come
back to a view seen before (turn 360° in place; walk away, turn round, walk back, turn round;
look left, right, left), with exploring in between: data that needs memory, and what memory
is evaluated on.

A policy is seeded per episode, so the same seed and policy give the same actions; it knows
only the world's action space and macros, never the simulator.
"""

from __future__ import annotations

import numpy as np

from liveworld.common import LiveworldError
from liveworld.data.worlds.base import Obs, World

POLICIES = ("random", "explore", "revisit")


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


def _angle_step(a: float, b: float) -> float:
    """The signed turn from angle a to angle b, in degrees, in (-180, 180]."""
    return (b - a + 180.0) % 360.0 - 180.0


class RevisitPolicy:
    """Routes that return to a view seen before, in a world with MOVE_FORWARD, TURN_LEFT and
    TURN_RIGHT buttons that reports the player's pose (x, y, angle). A route is a list of legs:

        ("steps", buttons, n)        hold the buttons n steps
        ("turn", direction, deg)     turn until the view has turned `deg` degrees
        ("goto", None, (x, y))       walk to a point, steering towards it
        ("face", None, angle)        turn to face an angle (the shorter way)

    `spin` turns 360° in place; `out-and-back` walks away, turns round, walks back to where it
    started and faces the way it faced; `look` looks left, right, then left again, back to the
    first view. Between routes the player explores for a while to reach new places. Every leg
    has a step limit, so a wall or a monster never stalls the recording.
    """

    ROUTES = ("spin", "out-and-back", "look")
    DEGREES_PER_STEP = 7.0  # Doom's turning speed at frame skip 2, once the turn has sped up
    EXPLORE_STEPS = (10, 30)
    ARRIVED = 16.0  # map units
    FACING = 5.0  # degrees
    STEER = 12.0  # degrees off the bearing at which the walk back turns while walking

    def __init__(self, world: World, seed: int):
        space = world.action_space
        need = {"MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT"}
        if space.kind != "buttons" or not need <= set(space.names):
            raise LiveworldError(f"the revisit policy needs a world with the buttons {sorted(need)} "
                                 f"(doom:...); {world.name} has {space.names}")
        self.world, self.rng = world, np.random.default_rng(seed)
        self.explore = ExplorePolicy(world, seed + 1)
        self.legs: list[tuple[str, object, object]] = []
        self.turned = 0.0  # degrees turned in the current leg
        self.steps_in_leg = 0
        self.prev_angle: float | None = None
        self.routes: list[tuple[int, str]] = []  # (step, route) for inspection
        self.t = 0

    def _plan(self, pose) -> None:
        turn = "TURN_LEFT" if self.rng.random() < 0.5 else "TURN_RIGHT"
        back = "TURN_RIGHT" if turn == "TURN_LEFT" else "TURN_LEFT"
        route = self.ROUTES[int(self.rng.integers(len(self.ROUTES)))]
        if route == "out-and-back" and pose is None:
            route = "spin"  # coming back needs to know where "back" is
        legs: list = [("steps", "explore", int(self.rng.integers(*self.EXPLORE_STEPS)))]
        if route == "spin":
            legs += [("turn", turn, 360.0)]
        elif route == "out-and-back":
            legs += [("mark", None, None), ("steps", ("MOVE_FORWARD",), int(self.rng.integers(10, 41))),
                     ("turn", turn, 180.0), ("goto", None, None), ("face", None, None)]
        else:
            m = float(self.rng.uniform(45, 120))
            legs += [("turn", turn, m), ("turn", back, 2 * m), ("turn", turn, m)]
        self.routes.append((self.t, route))
        self.legs = legs

    def _leg_done(self, pose) -> bool:
        kind, arg, target = self.legs[0]
        if kind == "steps":
            return self.steps_in_leg >= target
        if kind == "turn":
            return self.turned >= target or self.steps_in_leg >= 3 * target / self.DEGREES_PER_STEP + 10
        if kind == "goto":
            return pose is None or np.hypot(target[0] - pose[0], target[1] - pose[1]) < self.ARRIVED or self.steps_in_leg >= 120
        if kind == "face":
            return pose is None or abs(_angle_step(pose[2], target)) <= self.FACING or self.steps_in_leg >= 60
        return True  # "mark"

    def act(self, obs: Obs) -> np.ndarray:
        pose = obs.position if obs.position is not None and len(obs.position) > 2 else None
        if pose is not None and self.prev_angle is not None:
            self.turned += abs(_angle_step(self.prev_angle, pose[2]))
        elif pose is None:
            self.turned += self.DEGREES_PER_STEP
        self.prev_angle = pose[2] if pose is not None else None
        while True:
            if not self.legs:
                self._plan(pose)
            kind, arg, target = self.legs[0]
            if kind == "mark":  # remember where the route starts: the goto and face legs go back there
                self.legs = [(k, a, (pose[0], pose[1]) if k == "goto" else (pose[2] if k == "face" else t))
                             for k, a, t in self.legs[1:]]
                continue
            if self._leg_done(pose):
                self.legs.pop(0)
                self.turned, self.steps_in_leg = 0.0, 0
                continue
            break
        self.steps_in_leg += 1
        self.t += 1
        action = self.explore.act(obs)  # also keeps the explorer's view of the world current
        if kind == "steps" and arg == "explore":
            return action
        if kind == "steps":
            return self.world.encode_names(arg)
        if kind == "turn":
            return self.world.encode_names((arg,))
        if kind == "face":
            return self.world.encode_names(("TURN_LEFT",) if _angle_step(pose[2], target) > 0 else ("TURN_RIGHT",))
        bearing = float(np.degrees(np.arctan2(target[1] - pose[1], target[0] - pose[0])))  # goto
        off = _angle_step(pose[2], bearing)
        if abs(off) <= self.STEER:
            return self.world.encode_names(("MOVE_FORWARD",))
        turn = "TURN_LEFT" if off > 0 else "TURN_RIGHT"
        return self.world.encode_names((turn, "MOVE_FORWARD") if abs(off) < 45 else (turn,))


def make_policy(name: str, world: World, seed: int):
    if name == "random":
        return RandomPolicy(world, seed)
    if name == "explore":
        return ExplorePolicy(world, seed)
    if name == "revisit":
        return RevisitPolicy(world, seed)
    raise LiveworldError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
