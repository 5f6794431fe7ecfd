"""A world model as a Gymnasium environment: `gymnasium.make("liveworld/World-v0", checkpoint=...)`,
and for a checkpoint of several worlds `world="atari:Breakout"` (default: its first); each world
has its own frame size and action space. `reset(options={"prompt": "..."})` starts from text
alone.

Observations are the generated frames (uint8 [H, W, 3]); the action space comes from the
checkpoint (MultiBinary for button worlds, Discrete otherwise); each step's sound is in
`info["audio"]`. There is no reward model yet: the reward is 0 and episodes end only by the
time limit. One engine per environment; the stream's state is the engine session.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class WorldEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 17.5}

    def __init__(self, checkpoint: str | None = None, steps: int | None = None, render_mode: str | None = None,
                 device: str | None = "cpu", threads: int | None = None, world: str | None = None):
        from liveworld.engine.runner import WorldEngine  # the model loads with the env, not with `import liveworld`

        self.engine = WorldEngine.load(checkpoint, device=device, steps=steps, threads=threads, world=world)
        w, h = self.engine.frame_size
        self.observation_space = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        space = self.engine.action_space
        self.action_space = gym.spaces.MultiBinary(len(space.names)) if space.kind == "buttons" else gym.spaces.Discrete(len(space.names))
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.engine.fps}
        self.session = None
        self._frame = np.zeros((h, w, 3), np.uint8)

    def _names(self, action) -> list[str]:
        space = self.engine.action_space
        if space.kind == "buttons":
            return [n for n, on in zip(space.names, np.asarray(action).reshape(-1)) if on]
        return [space.names[int(action)]]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        session_seed = int(self.np_random.integers(2**31))
        text, prompt = (options or {}).get("text"), (options or {}).get("prompt")
        self.session = self.engine.new_session(seed=session_seed, text=text, prompt=prompt)
        self._frame = self.session.opening.copy()
        return self._frame.copy(), {"text": self.session.text}

    def step(self, action):
        if self.session is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        frame, audio = self.engine.step(self.session, self._names(action))
        self._frame = frame
        return frame.copy(), 0.0, False, False, {"audio": audio, "frame_index": self.session.frame_index}

    def render(self):
        if self.render_mode == "rgb_array":
            return self._frame.copy()
        return None


def register() -> None:
    if "liveworld/World-v0" not in gym.registry:
        gym.register(id="liveworld/World-v0", entry_point="liveworld.envs:WorldEnv", max_episode_steps=1000)
