"""The browser player's keyboard: `KeyboardEvent.code` -> the part of an action name a key presses,
for Doom's buttons, Atari's joystick and MiniGrid's moves, else digits and letters in order. The
page (serve/static) sends the codes held; the engine composes them into actions
(tokenizers/action.compose).
"""

from __future__ import annotations

from typing import Sequence

from liveworld.tokenizers.action import name_parts

# Browser `KeyboardEvent.code` -> Doom button. Codes name physical keys, so WASD stays where it
# is on AZERTY or Dvorak keyboards. Arrows duplicate W/S and the turns for one-handed play.
DOOM_KEYMAP: dict[str, str] = {
    "KeyW": "MOVE_FORWARD",
    "ArrowUp": "MOVE_FORWARD",
    "KeyS": "MOVE_BACKWARD",
    "ArrowDown": "MOVE_BACKWARD",
    "KeyA": "TURN_LEFT",
    "ArrowLeft": "TURN_LEFT",
    "KeyD": "TURN_RIGHT",
    "ArrowRight": "TURN_RIGHT",
    "KeyQ": "MOVE_LEFT",
    "KeyE": "MOVE_RIGHT",
    "Space": "ATTACK",
    "KeyF": "USE",
}


# Atari's minimal action sets name joystick moves; keys press the parts of a name (UP + RIGHT +
# FIRE -> UPRIGHTFIRE), `compose` joins what is held into the name the game knows.
ATARI_KEYMAP: dict[str, str] = {
    "ArrowUp": "UP", "KeyW": "UP", "ArrowDown": "DOWN", "KeyS": "DOWN",
    "ArrowLeft": "LEFT", "KeyA": "LEFT", "ArrowRight": "RIGHT", "KeyD": "RIGHT", "Space": "FIRE",
}
# MiniGrid / BabyAI: turn, step, and act on the cell ahead.
GRID_KEYMAP: dict[str, str] = {
    "ArrowLeft": "left", "KeyA": "left", "ArrowRight": "right", "KeyD": "right", "ArrowUp": "forward", "KeyW": "forward",
    "KeyP": "pickup", "KeyO": "drop", "Space": "toggle", "Enter": "done",
}


def keymap_for_names(names: Sequence[str]) -> dict[str, str]:
    """Browser key code -> the part of an action name it presses, for a world's action names:
    Doom's buttons, Atari's joystick, MiniGrid's moves, else digits and letters in order."""
    if all(n in names for n in set(DOOM_KEYMAP.values())):
        return dict(DOOM_KEYMAP)
    parts = {p for n in names for p in name_parts(n)}
    for keymap in (ATARI_KEYMAP, GRID_KEYMAP):
        usable = {k: v for k, v in keymap.items() if v in parts}
        if usable:
            return usable
    keys = [f"Digit{i}" for i in range(1, 10)] + [f"Key{c}" for c in "QWERTYUIOPASDFGHJKLZXCVBNM"]
    return {k: n for k, n in zip(keys, names)}
