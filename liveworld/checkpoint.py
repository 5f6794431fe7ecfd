"""Checkpoints: a directory with `model.safetensors` and `config.json` beside it, no pickle.

`config.json` holds {"kind": ..., "config": {dataclass fields}, ...extra}; `load_config`
rebuilds the frozen dataclass, so play/eval/serve need only the path. Optional training state
(optimiser moments, step counters) sits in `train_state.safetensors` + `train_state.json`.

A checkpoint is written into a temporary sibling directory and swapped in with renames, so a
kill at any moment leaves either the previous checkpoint or the new one. Weights may be stored
in half precision (bundled assets) and are cast back to the module's dtype on load.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from liveworld.common import LiveworldError

T = TypeVar("T")


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type[T], d: dict) -> T:
    """Rebuilds a (possibly nested) frozen dataclass; lists become tuples; unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise LiveworldError(f"{cls.__name__} has no fields {sorted(unknown)}; the checkpoint is from another version")
    kwargs = {}
    for k, v in d.items():
        sub = _dataclass_type(cls, k)
        if sub is not None and isinstance(v, dict):
            v = config_from_dict(sub, v)
        elif isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        kwargs[k] = v
    return cls(**kwargs)


def _dataclass_type(cls: type, name: str) -> type | None:
    default = next(f for f in dataclasses.fields(cls) if f.name == name)
    if default.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = default.default_factory()  # type: ignore[misc]
        return type(value) if dataclasses.is_dataclass(value) else None
    if dataclasses.is_dataclass(default.default):
        return type(default.default)
    return None


def _swap_in(tmp: Path, path: Path) -> None:
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    if old.exists():
        shutil.rmtree(old)


def save_checkpoint(path: str | Path, kind: str, config: Any, state: dict[str, torch.Tensor],
                    extra: dict | None = None, dtype: torch.dtype | None = None,
                    train_state: dict[str, torch.Tensor] | None = None, train_info: dict | None = None,
                    extra_dirs: dict[str, Path] | None = None, extra_files: dict[str, Path] | None = None) -> Path:
    """Writes the checkpoint directory `path` atomically; `extra_dirs` and `extra_files`
    {name: source} are copied inside it (a world model carries its tokenizers and opening frames)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tensors = {k: (v.detach().to(dtype) if dtype is not None and v.is_floating_point() else v.detach()).contiguous().cpu()
                   for k, v in state.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        meta = {"kind": kind, "config": config_to_dict(config), **(extra or {})}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        if train_state is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in train_state.items()}, str(tmp / "train_state.safetensors"))
            (tmp / "train_state.json").write_text(json.dumps(train_info or {}, indent=2) + "\n")
        for name, src in (extra_dirs or {}).items():
            shutil.copytree(src, tmp / name)
        for name, src in (extra_files or {}).items():
            shutil.copy2(src, tmp / name)
        _swap_in(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def _resolve(path: Path) -> Path:
    if not path.exists():
        old = path.with_name(path.name + ".old")  # killed between the two renames of _swap_in
        if old.exists():
            return old
        raise LiveworldError(f"checkpoint {path} does not exist")
    return path


def read_checkpoint_meta(path: str | Path, kind: str | None = None) -> dict:
    path = _resolve(Path(path))
    cfg = path / "config.json"
    if not cfg.exists():
        raise LiveworldError(f"{path} is not a liveworld checkpoint (no config.json beside the weights)")
    try:
        meta = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise LiveworldError(f"{cfg} is not valid JSON ({e}); the checkpoint is damaged, retrain or restore it") from e
    if kind is not None and meta.get("kind") != kind:
        raise LiveworldError(f"{path} holds a {meta.get('kind')!r} checkpoint, expected {kind!r}")
    return meta


def load_state(path: str | Path, name: str = "model") -> dict[str, torch.Tensor]:
    f = _resolve(Path(path)) / f"{name}.safetensors"
    if not f.exists():
        raise LiveworldError(f"{f} is missing; the checkpoint is incomplete")
    try:
        return load_file(str(f))
    except (SafetensorError, OSError, ValueError) as e:
        raise LiveworldError(f"{f} is corrupt or truncated ({e}); retrain or restore the checkpoint") from e


def load_into(module: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    state = load_state(path)
    ref = module.state_dict()
    missing, unexpected = set(ref) - set(state), set(state) - set(ref)
    if missing or unexpected:
        raise LiveworldError(f"{path} does not match its config (missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]})")
    module.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()})
    return module
