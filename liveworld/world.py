"""A trained world from a path alone: its model (EMA weights), its tokenizers and its metadata.

Checkpoints are directories with `model.safetensors` and `config.json` beside it (no pickle);
a run directory or its `checkpoint/` both work. The engine, eval and play load worlds here and
never import the training loop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from liveworld.checkpoint import config_from_dict, load_into, read_checkpoint_meta
from liveworld.data.episode import ActionSpace
from liveworld.model.omni import OmniConfig, OmniWorldModel
from liveworld.tokenizers.worldtok import WorldTokenizers

WORLD_KIND = "world_model"


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory or its checkpoint/ both work."""
    path = Path(path)
    return path / "checkpoint" if (path / "checkpoint" / "config.json").exists() else path


def load_world_model(path: str | Path, device: torch.device | None = None) -> tuple[OmniWorldModel, dict]:
    """A trained world model (EMA weights, eval mode) and its checkpoint metadata."""
    ckpt = resolve_checkpoint(path)
    meta = read_checkpoint_meta(ckpt, WORLD_KIND)
    model = OmniWorldModel(config_from_dict(OmniConfig, meta["config"]))
    load_into(model, ckpt)
    model.eval()
    if device is not None:
        model.to(device)
    meta["path"] = str(ckpt)
    return model, meta


def load_world_tokenizers(meta: dict) -> WorldTokenizers:
    return WorldTokenizers(Path(meta["path"]) / "tokenizers", ActionSpace.from_dict(meta["world"]["action_space"]))
