"""Recordable worlds, named `family:spec` (doom:deathmatch, atari:Breakout, babyai:GoToRedBall-v0,
minigrid:Empty-8x8-v0)."""

from __future__ import annotations

from liveworld.common import LiveworldError
from liveworld.data.worlds.base import Obs, World

FAMILIES = ("doom", "atari", "babyai", "minigrid")


def make_world(name: str) -> World:
    family, sep, spec = name.partition(":")
    if not sep or not spec or family not in FAMILIES:
        raise LiveworldError(
            f"world {name!r} must be FAMILY:NAME with FAMILY one of {', '.join(FAMILIES)} "
            f"(e.g. doom:deathmatch, atari:Breakout, babyai:GoToRedBall-v0, minigrid:Empty-8x8-v0)"
        )
    if family == "doom":
        from liveworld.data.worlds.doom import DoomWorld

        return DoomWorld(spec)
    if family == "atari":
        from liveworld.data.worlds.atari import AtariWorld

        return AtariWorld(spec)
    from liveworld.data.worlds.grid import GridWorld

    return GridWorld(family, spec)


__all__ = ["FAMILIES", "Obs", "World", "make_world"]
