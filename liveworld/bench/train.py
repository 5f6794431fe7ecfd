"""`liveworld bench train`: how many frames a training run learns from per second, and what each
costs. Prints a table, then one JSON line last.

A "predicted frame" is one frame whose denoising loss a step trains (the clean context frames a
clip also carries are not counted). The steps are real: the objective of train/objective.py on
clips of the preset's shape (random latents of the world's grid, real shapes of its actions,
audio and text), backward and an AdamW update, as `liveworld train` runs them; the first steps
are warm-up and not timed. GFLOP per predicted frame counts every matmul and convolution of a
step (forward, the objective's no-gradient passes, backward) with torch's flop counter.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import date

import torch
from torch.utils.flop_counter import FlopCounterMode

from liveworld.common import machine_description, matmul_gflops, setup_cpu_threads
from liveworld.model.omni import OmniConfig, OmniWorldModel
from liveworld.train.config import preset
from liveworld.train.objective import clip_frames, world_loss

def synthetic_clip(mcfg: OmniConfig, batch: int, clip_len: int, grid: tuple[int, int], gen: torch.Generator) -> dict:
    """A batch of clips with the shapes a world of `grid` gives: what the objective reads."""
    h, w = grid
    T = mcfg.text_len
    action = (torch.rand(batch, clip_len, mcfg.action_dim, generator=gen) < 0.2).float()
    clip = {"video": torch.randn(batch, clip_len, mcfg.video_channels, h, w, generator=gen),
            "action": action,
            "text": torch.randint(0, mcfg.text_vocab, (batch, T), generator=gen),
            "text_valid": torch.ones(batch, T, dtype=torch.bool),
            "prompt": torch.randint(0, mcfg.text_vocab, (batch, T), generator=gen),
            "prompt_valid": torch.ones(batch, T, dtype=torch.bool)}
    if mcfg.audio_tokens:
        clip["audio"] = torch.randn(batch, clip_len, mcfg.audio_tokens, mcfg.audio_channels, generator=gen)
    return clip


def checkpoint_meta(checkpoint: str | None) -> dict:
    """A checkpoint's metadata with its path (the bundled world's by default)."""
    from liveworld.world import read_world_meta

    if checkpoint is None:
        from liveworld.bundled import bundled_checkpoint

        checkpoint = bundled_checkpoint()
    return read_world_meta(checkpoint)


def world_shapes(meta: dict) -> tuple[dict, tuple[int, int]]:
    """The token shapes of a trained world: the model config's latent channels, action width and
    audio tokens, and the latent grid of its (first) world."""
    from liveworld.world import load_world_tokenizers, select_world

    shapes = {k: meta["config"][k] for k in ("video_channels", "action_dim", "audio_tokens", "audio_channels")}
    return shapes, tuple(load_world_tokenizers(select_world(meta, None)).grid)


def bench_train(preset_name: str | None = None, checkpoint: str | None = None, steps: int = 10, warmup: int = 3,
                threads: int | None = None, grid: tuple[int, int] | None = None, as_json: bool = True) -> dict:
    """A preset's or a checkpoint's run (default: the bundled world's) on clips of a world's
    shapes: the checkpoint's (the bundled world's for a preset), or `grid` with a preset's own
    channels."""
    from liveworld.train.loop import run_config_from_meta

    threads = setup_cpu_threads(threads)
    meta = checkpoint_meta(checkpoint) if preset_name is None or grid is None else None
    run = preset(preset_name) if preset_name is not None else run_config_from_meta(meta)
    mcfg = run.model
    if grid is None:
        shapes, grid = world_shapes(meta)
        if preset_name is not None:  # a preset's model at the world's token shapes (its audio only if it has any)
            mcfg = dataclasses.replace(mcfg, **{**shapes, "audio_tokens": shapes["audio_tokens"] if mcfg.audio_tokens else 0})
    tcfg = run.train
    micro = tcfg.micro_batch or tcfg.batch_size
    clip_len = clip_frames(mcfg, tcfg)
    predicted = micro * (clip_len - mcfg.stack)  # frames whose loss one micro-batch trains
    torch.manual_seed(0)
    model = OmniWorldModel(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        clip = synthetic_clip(mcfg, micro, clip_len, grid, gen)
        loss, _ = world_loss(model, clip, mcfg, tcfg, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    fc = FlopCounterMode(display=False)
    with fc:
        step()
    gflop_step = fc.get_total_flops() / 1e9
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sec = (time.perf_counter() - t0) / steps
    gflops = matmul_gflops()
    fps = predicted / sec
    res = {"bench": "train", "date": date.today().isoformat(), "machine": machine_description(),
           "preset": run.preset, "threads": threads, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           "grid": list(grid), "micro_batch": micro, "clip_frames": clip_len, "predicted_frames_per_step": predicted,
           "ms_per_step": round(sec * 1000, 1), "predicted_frames_per_s": round(fps, 1),
           "predicted_frames_per_s_per_core": round(fps / threads, 1),
           "gflop_per_predicted_frame": round(gflop_step / predicted, 3),
           "achieved_gflops": round(gflop_step / sec, 1), "matmul_gflops": round(gflops, 1)}
    rows = [("preset", res["preset"]), ("parameters (M)", res["params_m"]), ("threads", threads),
            ("clip frames / predicted per step", f"{clip_len} / {predicted}"), ("ms per step", res["ms_per_step"]),
            ("predicted frames / s", res["predicted_frames_per_s"]),
            ("predicted frames / s / core", res["predicted_frames_per_s_per_core"]),
            ("GFLOP per predicted frame", res["gflop_per_predicted_frame"]),
            ("achieved GFLOP/s", res["achieved_gflops"]), ("fp32 matmul GFLOP/s (this machine, now)", res["matmul_gflops"])]
    width = max(len(k) for k, _ in rows)
    print(f"training throughput, {res['machine']}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    if as_json:
        print(json.dumps(res))
    return res
