"""MiniGrid and BabyAI worlds through gymnasium: `minigrid:Empty-8x8-v0`, `babyai:GoToRedBall-v0`
(the `MiniGrid-`/`BabyAI-` prefix may be given or left out).

Frames are the full rendered grid (32-pixel tiles), the mission sentence is the text, there is
no audio. The frame rate is nominal (10 steps per second): the game is turn-based.
"""

from __future__ import annotations

import numpy as np

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace
from liveworld.data.worlds.base import Obs, World


class GridWorld(World):
    def __init__(self, family: str, env_name: str):
        import gymnasium as gym
        import minigrid  # noqa: F401  (registers the environments)

        prefix = {"minigrid": "MiniGrid-", "babyai": "BabyAI-"}[family]
        env_id = env_name if env_name.startswith(prefix) else prefix + env_name
        try:
            self.env = gym.make(env_id, render_mode="rgb_array")
        except gym.error.Error as e:
            known = sorted(k[len(prefix):] for k in gym.registry if k.startswith(prefix))[:12]
            raise LiveworldError(f"unknown {family} environment {env_name!r} ({e}); e.g. {', '.join(known)}") from e
        names = [a.name for a in self.env.unwrapped.actions]
        self._mission = ""
        super().__init__(
            name=f"{family}:{env_id[len(prefix):]}",
            action_space=ActionSpace("discrete", names),
            fps=10.0,
            description="",
            explore_macros=[
                (5.0, ("forward",), (1, 4)),
                (2.0, ("left",), (1, 2)),
                (2.0, ("right",), (1, 2)),
                (1.0, ("toggle",), (1, 1)),
                (0.7, ("pickup",), (1, 1)),
                (0.3, ("drop",), (1, 1)),
            ],
        )

    def reset(self, seed: int) -> Obs:
        obs, _ = self.env.reset(seed=int(seed) % (2**31))
        self._mission = obs["mission"]
        self.description = self._mission
        return Obs(self.env.render(), np.zeros((0, 1), np.int16), self._mission)

    def step(self, action: np.ndarray) -> Obs:
        obs, _, terminated, truncated, _ = self.env.step(int(action[0]))
        text = None
        if obs["mission"] != self._mission:
            self._mission = text = obs["mission"]
        frame = self.env.render()
        return Obs(frame, np.zeros((0, 1), np.int16), text, bool(terminated or truncated))

    def close(self) -> None:
        self.env.close()
