"""A trained world from a path alone: its model (EMA weights), its tokenizers and its metadata.

Checkpoints are directories with `model.safetensors` and `config.json` beside it (no pickle);
a run directory or its `checkpoint/` both work. The engine, eval and play load worlds here and
never import the training loop.
"""

from __future__ import annotations

from pathlib import Path

import torch

from liveworld.checkpoint import config_from_dict, load_into, read_checkpoint_meta
from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace
from liveworld.model.omni import OmniConfig, OmniWorldModel
from liveworld.tokenizers.action import ActionUnion
from liveworld.tokenizers.worldtok import WorldTokenizers

WORLD_KIND = "world_model"
OPENINGS = "start.safetensors"  # a checkpoint's real opening frames, the streams `play` starts from


def openings_path(ckpt: Path, check: bool = True) -> Path:
    """Where a checkpoint keeps its opening frames; with `check`, an error that says how to add
    them when it has none."""
    f = Path(ckpt) / OPENINGS
    if check and not f.exists():
        raise LiveworldError(f"{ckpt} has no {OPENINGS} (opening frames); it was written by an older "
                             f"liveworld: resume the run for one step (`liveworld train --resume --out RUN`) to add them")
    return f


def write_openings(path: Path, per_world: dict[str | None, dict[str, torch.Tensor]]) -> None:
    """The one writer of the openings file: one world's tensors (key None) as they are, several
    worlds' under their names ("atari:Breakout/video", ...)."""
    from safetensors.torch import save_file

    if list(per_world) == [None]:
        save_file(per_world[None], str(path))
    else:
        save_file({f"{w}/{k}": v for w, t in per_world.items() for k, v in t.items()}, str(path))


def read_openings(ckpt: Path, world: str | None = None) -> dict[str, torch.Tensor]:
    """The one reader: a world's opening frames (video [K, F, C, h, w], action [K, F, A], audio,
    text and prompt ids), which training writes into every checkpoint and export carries along;
    `world` picks one world's from a checkpoint of several."""
    from safetensors.torch import load_file

    t = load_file(str(openings_path(ckpt)))
    if world is not None and any("/" in k for k in t):
        t = {k.split("/", 1)[1]: v for k, v in t.items() if k.startswith(world + "/")}
    return t


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory or its checkpoint/ both work."""
    path = Path(path)
    return path / "checkpoint" if (path / "checkpoint" / "config.json").exists() else path


def sampling_steps(meta: dict, steps: int | None = None) -> int:
    """The flow steps a frame is sampled with: `steps` when given, else the world's own
    (`sampling_steps` in its config.json, written by `liveworld export --steps`; 1 if absent)."""
    return int(steps) if steps is not None else int(meta.get("sampling_steps", 1))


def read_world_meta(path: str | Path) -> dict:
    """A world checkpoint's metadata (config.json), with `path` its checkpoint directory."""
    ckpt = resolve_checkpoint(path)
    return {**read_checkpoint_meta(ckpt, WORLD_KIND), "path": str(ckpt)}


def load_world_model(path: str | Path, device: torch.device | None = None) -> tuple[OmniWorldModel, dict]:
    """A trained world model (EMA weights, eval mode) and its checkpoint metadata."""
    meta = read_world_meta(path)
    model = OmniWorldModel(config_from_dict(OmniConfig, meta["config"]))
    load_into(model, Path(meta["path"]))
    model.eval()
    if device is not None:
        model.to(device)
    return model, meta


def world_names(meta: dict) -> list[str]:
    """The worlds a checkpoint models, the default (the first) first."""
    return list(meta["worlds"]) if "worlds" in meta else [meta["world"]["world"]]


def select_world(meta: dict, world: str | None) -> dict:
    """The checkpoint's metadata with `world` (a name of `world_names`, or None for the first)
    as its `world`: what the engine, eval and the page read of one world."""
    names = world_names(meta)
    if world is None:
        world = names[0]
    if world not in names:
        raise LiveworldError(f"this checkpoint models {', '.join(names)}; {world!r} is not one of them (pass --world with one of those)")
    if "worlds" not in meta:
        return meta
    return {**meta, "world": meta["worlds"][world]}


def load_world_tokenizers(meta: dict) -> WorldTokenizers:
    """The tokenizers of the world `meta["world"]` names (after `select_world` for a checkpoint
    of several): its frame size, and its actions in the model's union."""
    w = meta["world"]
    union = ActionUnion.from_dict(meta["action_union"]) if "action_union" in meta else None
    return WorldTokenizers(Path(meta["path"]) / "tokenizers", ActionSpace.from_dict(w["action_space"]),
                           frame_size=w.get("frame_size"), union=union,
                           world=w["world"] if union is not None else None)
