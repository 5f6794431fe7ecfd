"""Atari 2600 worlds through ale-py: `atari:<Game>` (e.g. atari:Breakout, atari:MsPacman).

Frames are the native 210x160 RGB screen. Each step repeats the action for `frame_skip`
emulator frames and keeps the sound of every one of them (ALE's sound_obs: 512 unsigned 8-bit
mono samples per 60 Hz frame, stored as int16 at 30,720 Hz). Sticky actions are off in the
emulator: the exploring policy makes its own, so the same seed gives the same episode.
"""

from __future__ import annotations

import re

import numpy as np

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace
from liveworld.data.worlds.base import Obs, World

EMULATOR_FPS = 60
SAMPLES_PER_EMULATOR_FRAME = 512


def rom_name(game: str) -> str:
    """`MsPacman` -> `ms_pacman`, the name ale-py's ROM registry uses."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower().replace("-", "_")


class AtariWorld(World):
    def __init__(self, game: str, frame_skip: int = 4):
        import ale_py
        from ale_py import roms

        try:
            path = roms.get_rom_path(rom_name(game))
        except Exception:  # ale-py raises different types across versions
            path = None
        if not path:
            raise LiveworldError(f"no Atari ROM named {game!r} ships with ale-py; try e.g. atari:Breakout, atari:Pong, atari:MsPacman")
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale = ale_py.ALEInterface()
        self.ale.setBool("sound_obs", True)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("frame_skip", 1)
        self.rom_path = str(path)
        self.ale.loadROM(self.rom_path)
        self.actions = list(self.ale.getMinimalActionSet())
        self.frame_skip = frame_skip
        names = [a.name for a in self.actions]
        macros = [(3.0 if n not in ("NOOP",) else 1.0, (n,), (2, 8)) for n in names]
        super().__init__(
            name=f"atari:{game}",
            action_space=ActionSpace("discrete", names),
            fps=EMULATOR_FPS / frame_skip,
            description=f"The Atari 2600 game {game}.",
            sample_rate_hz=EMULATOR_FPS * SAMPLES_PER_EMULATOR_FRAME,
            audio_channels=1,
            explore_macros=macros,
        )

    def _audio(self) -> np.ndarray:
        a = np.asarray(self.ale.getAudio(), np.int16)
        return ((a - 128) * 256).astype(np.int16).reshape(-1, 1)

    def reset(self, seed: int) -> Obs:
        self.ale.setInt("random_seed", int(seed) % (2**31))
        self.ale.loadROM(self.rom_path)  # the seed takes effect on load
        self.ale.reset_game()
        silence = np.zeros((self.frame_skip * SAMPLES_PER_EMULATOR_FRAME, 1), np.int16)
        return Obs(self.ale.getScreenRGB().copy(), silence)

    def step(self, action: np.ndarray) -> Obs:
        act = self.actions[int(action[0])]
        chunks = []
        for _ in range(self.frame_skip):
            self.ale.act(act)
            chunks.append(self._audio())
            if self.ale.game_over():
                return Obs(np.zeros((1, 1, 3), np.uint8), np.zeros((0, 1), np.int16), None, True)
        return Obs(self.ale.getScreenRGB().copy(), np.concatenate(chunks))
