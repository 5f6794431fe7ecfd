"""Where the bundled default world lives inside the package, and what it was made from.

`world.json` names the world, the size it is trained at, the seeds its training episodes used
(so evaluation can pick seeds never used for training) and the exact commands that made it.
"""

from __future__ import annotations

import json
from pathlib import Path

from liveworld.common import LiveworldError

BUNDLED_WORLD_DIR = Path(__file__).parent / "assets" / "worlds" / "doom"


def bundled_world() -> dict:
    f = BUNDLED_WORLD_DIR / "world.json"
    if not f.exists():
        raise LiveworldError(f"the bundled world is missing ({f}); reinstall liveworld or pass --checkpoint")
    return json.loads(f.read_text())


def bundled_tokenizers_dir() -> Path:
    d = BUNDLED_WORLD_DIR / "tokenizers"
    if not (d / "video" / "config.json").exists():
        raise LiveworldError(f"the bundled tokenizers are missing ({d}); pass --checkpoint DIR")
    return d


def bundled_checkpoint() -> Path:
    if not (BUNDLED_WORLD_DIR / "config.json").exists():
        raise LiveworldError(f"the bundled world model is missing ({BUNDLED_WORLD_DIR}); pass --checkpoint RUN")
    return BUNDLED_WORLD_DIR


def heldout_seed(world: dict, k: int = 0) -> int:
    """A seed no training episode of the bundled world used."""
    return int(world["heldout_seed_base"]) + k
