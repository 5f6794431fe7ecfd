"""ViZDoom worlds: `doom:<scenario>` (a bundled scenario, e.g. deathmatch) or
`doom:freedoom1/E1M1`, `doom:freedoom2/MAP01` (a Freedoom map).

Frames are RGB at the native 4:3 size (160x120 by default), HUD off. Each step holds the action
for `frame_skip` tics and keeps the audio of every tic (int16 stereo, 22,050 Hz, 630 samples a
tic). Needs the system library libopenal1 for sound (without it the buffer is silent) and the
game argument `+snd_efx 0` (Debian 12's OpenAL aborts otherwise).
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import numpy as np

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace
from liveworld.data.worlds.base import Obs, World

TICS_PER_SECOND = 35
SAMPLE_RATE_HZ = 22050
BUTTONS = ["MOVE_FORWARD", "MOVE_BACKWARD", "TURN_LEFT", "TURN_RIGHT", "MOVE_LEFT", "MOVE_RIGHT", "ATTACK", "USE"]

DESCRIPTIONS = {
    "deathmatch": "A dark techbase arena full of monsters, weapons and doors; the player walks, turns and shoots.",
    "basic": "A square room; a single monster stands at the far wall.",
    "defend_the_center": "A circular room; monsters approach the player standing in the middle.",
    "defend_the_line": "A corridor; monsters come from the far end towards the player.",
    "deadly_corridor": "A long corridor lined with shooting monsters; armour at the end.",
    "health_gathering": "A floor of acid with medikits scattered around.",
    "health_gathering_supreme": "A maze of acid floors and medikits.",
    "my_way_home": "A maze of coloured rooms; the goal is a vest in one of them.",
    "take_cover": "Monsters on the far wall shoot fireballs; the player dodges sideways.",
    "predict_position": "A room where a monster walks left and right.",
}

JUNK_MESSAGES = ("MIDI", "playback")  # engine chatter, not game text

RESOLUTIONS = {(160, 120): "RES_160X120", (320, 240): "RES_320X240", (640, 480): "RES_640X480", (200, 150): "RES_200X150"}


class DoomWorld(World):
    def __init__(self, spec: str, frame_skip: int = 2, size: tuple[int, int] = (160, 120)):
        import vizdoom as vzd

        scenario, _, level = spec.partition("/")
        cfg = os.path.join(vzd.scenarios_path, f"{scenario}.cfg")
        if not os.path.exists(cfg):
            known = sorted(f[:-4] for f in os.listdir(vzd.scenarios_path) if f.endswith(".cfg"))
            raise LiveworldError(f"unknown Doom scenario {scenario!r}; choose one of: {', '.join(known)}")
        if size not in RESOLUTIONS:
            raise LiveworldError(f"Doom size {size} is not one of {sorted(RESOLUTIONS)}")
        game = vzd.DoomGame()
        game.load_config(cfg)
        if level:
            game.set_doom_map(level)
        game.set_screen_resolution(getattr(vzd.ScreenResolution, RESOLUTIONS[size]))
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_window_visible(False)
        game.set_render_hud(False)
        game.set_automap_buffer_enabled(False)
        game.set_audio_buffer_enabled(True)
        game.set_audio_sampling_rate(vzd.SamplingRate.SR_22050)
        game.set_audio_buffer_size(frame_skip)  # keeps the audio of skipped tics
        game.set_notifications_buffer_enabled(True)
        game.set_available_buttons([getattr(vzd.Button, b) for b in BUTTONS])
        game.set_available_game_variables([vzd.GameVariable.POSITION_X, vzd.GameVariable.POSITION_Y, vzd.GameVariable.ANGLE])
        game.set_episode_timeout(10**7)  # episode length is the recorder's --steps
        game.set_living_reward(0)
        game.add_game_args("+snd_efx 0")
        try:
            game.init()
        except Exception as e:  # vizdoom raises its own exception types
            raise LiveworldError(f"ViZDoom failed to start {spec!r}: {e}") from e
        self.game, self.frame_skip = game, frame_skip
        self.samples_per_step = frame_skip * SAMPLE_RATE_HZ // TICS_PER_SECOND
        self._last_text = ""
        super().__init__(
            name=f"doom:{spec}",
            action_space=ActionSpace("buttons", BUTTONS),
            fps=TICS_PER_SECOND / frame_skip,
            description=DESCRIPTIONS.get(scenario, f"A Doom level ({spec})."),
            sample_rate_hz=SAMPLE_RATE_HZ,
            audio_channels=2,
            explore_macros=[
                (5.0, ("MOVE_FORWARD",), (4, 12)),
                (2.0, ("MOVE_FORWARD", "TURN_LEFT"), (2, 8)),
                (2.0, ("MOVE_FORWARD", "TURN_RIGHT"), (2, 8)),
                (1.5, ("TURN_LEFT",), (2, 10)),
                (1.5, ("TURN_RIGHT",), (2, 10)),
                (0.7, ("MOVE_LEFT",), (3, 8)),
                (0.7, ("MOVE_RIGHT",), (3, 8)),
                (0.7, ("MOVE_BACKWARD",), (3, 8)),
                (1.2, ("ATTACK",), (2, 6)),
                (0.8, ("MOVE_FORWARD", "ATTACK"), (2, 6)),
                (0.8, ("MOVE_FORWARD", "USE"), (2, 5)),
                (0.5, (), (2, 6)),
            ],
        )

    def _obs(self) -> Obs:
        state = self.game.get_state()
        if state is None:
            return Obs(np.zeros((1, 1, 3), np.uint8), np.zeros((0, 2), np.int16), None, True)
        audio = state.audio_buffer
        if audio is None or len(audio) != self.samples_per_step:
            audio = np.zeros((self.samples_per_step, 2), np.int16)
        lines = (state.notifications_buffer or "").replace("+", "").splitlines()
        note = " ".join(ln.strip() for ln in lines if ln.strip() and not any(j in ln for j in JUNK_MESSAGES))
        text = note if note and note != self._last_text else None
        self._last_text = note
        pos = tuple(float(v) for v in state.game_variables[:3])
        return Obs(np.ascontiguousarray(state.screen_buffer), np.asarray(audio, np.int16).reshape(-1, 2), text, False, pos)

    def reset(self, seed: int) -> Obs:
        self.game.set_seed(int(seed) % (2**31))
        self.game.new_episode()
        self._last_text = ""
        obs = self._obs()
        obs.audio = np.zeros((self.samples_per_step, 2), np.int16)  # nothing was heard before frame 0
        return obs

    def step(self, action: np.ndarray) -> Obs:
        self.game.make_action([int(a) for a in action], self.frame_skip)
        if self.game.is_episode_finished() or self.game.is_player_dead():
            return Obs(np.zeros((1, 1, 3), np.uint8), np.zeros((0, 2), np.int16), None, True)
        return self._obs()

    def close(self) -> None:
        self.game.close()


# -- leftovers of a killed recorder ---------------------------------------------------------------
# ViZDoom runs the game as a child process talking through POSIX shared memory named after the
# instance (/dev/shm/ViZDoom*<id>). A recorder killed with SIGKILL cannot close it: the game
# lives on as an orphan holding ~10 MB. Each recorder tags its games through the environment
# (OWNER_ENV, inherited by the child) and holds a lock on its data set while it runs
# (data/record.py), so the next recorder of that data set knows every tagged game is an orphan.
OWNER_ENV = "LIVEWORLD_RECORD_OWNER"
SHM_DIR = Path("/dev/shm")


def tagged_games(owner: str) -> list[tuple[int, str]]:
    """(pid, instance id) of every running ViZDoom game tagged `owner`, except this process's
    own children."""
    found = []
    tag = f"{OWNER_ENV}={owner}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if comm != "vizdoom" or ppid == os.getpid():
                continue
            if tag not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):  # gone meanwhile, or not ours to read
            continue
        instance = next((args[i + 1].decode() for i, a in enumerate(args[:-1]) if a == b"+viz_instance_id"), "")
        found.append((int(proc.name), instance))
    return found


def reap_orphans(owner: str) -> int:
    """Kills the games tagged `owner` that a killed recorder left and removes their shared
    memory. Call it only while holding the owner's lock (no live recorder has games then).
    Returns how many games it killed."""
    killed = 0
    for pid, instance in tagged_games(owner):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
        if re.fullmatch(r"[A-Za-z0-9]+", instance):
            for seg in SHM_DIR.glob(f"ViZDoom*{instance}"):
                seg.unlink(missing_ok=True)
    return killed
