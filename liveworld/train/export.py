"""`liveworld export`: a trained run -> a small, self-contained world directory (what is bundled
in liveworld/assets/worlds/): model.safetensors + config.json, tokenizers/{video,audio,text}/,
weights in half precision (cast back to fp32 on load), no optimiser state.

Knows checkpoint files; knows nothing about training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from liveworld.common import LiveworldError, write_json_atomic
from liveworld.world import openings_path, resolve_checkpoint

WEIGHT_FILES = ("model.safetensors",)


def _copy_checkpoint(src: Path, dst: Path, dtype: torch.dtype | None) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith("train_state") or f.is_dir():
            continue
        if f.name in WEIGHT_FILES and dtype is not None:
            t = load_file(str(f))
            save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in t.items()}, str(dst / f.name))
        else:
            shutil.copy2(f, dst / f.name)


def export_world(run: str | Path, out: str | Path, half: bool = True, tokenizers_only: str | None = None,
                 steps: int | None = None) -> Path:
    """Copies a run's checkpoint (or, with `tokenizers_only`, just a tokenizers directory) into
    `out`. `steps`: the world's default flow steps a frame (`sampling_steps` in config.json)."""
    if steps is not None and steps < 1:
        raise LiveworldError(f"--steps must be >= 1, got {steps}")
    out = Path(out)
    dtype = torch.float16 if half else None
    if tokenizers_only:
        src = Path(tokenizers_only)
    else:
        ckpt = resolve_checkpoint(run)
        if not (ckpt / "config.json").exists():
            raise LiveworldError(f"{run} holds no trained world (no checkpoint/config.json)")
        openings_path(ckpt)  # an error that says how to add them when missing
        _copy_checkpoint(ckpt, out, dtype)
        if steps is not None:
            meta = json.loads((out / "config.json").read_text())
            meta["sampling_steps"] = steps
            write_json_atomic(out / "config.json", meta)
        src = ckpt / "tokenizers"
    for sub in ("video", "audio", "text"):
        if (src / sub).exists():
            target = out / "tokenizers" / sub
            if target.exists():
                shutil.rmtree(target)
            _copy_checkpoint(src / sub, target, dtype)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"exported to {out} ({size / 2**20:.1f} MiB)")
    return out
