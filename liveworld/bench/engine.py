"""`liveworld bench engine`: how fast the streaming engine makes frames, and whether time and
memory stay flat as the stream grows. Prints a table, then one JSON line last.

Per frame: the flow steps, the cache write and both decoders, at batch 1, as `play` runs them.
The action-to-frame latency here is the engine's part (an action given now shapes the very next
frame, so it is one step); the browser adds transport and the frame clock on top.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import date

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from liveworld.common import machine_description, matmul_gflops, rss_mb
from liveworld.engine.runner import WorldEngine
from liveworld.model.memory import summarize
from liveworld.serve.play import random_actions


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stream(engine: WorldEngine, frames: int, seed: int = 0) -> dict:
    actions = random_actions(engine, frames, seed)
    t0 = time.perf_counter()
    s = engine.new_session(seed=seed)
    engine.step(s, actions[0])
    first_ms = (time.perf_counter() - t0) * 1000
    nfe0 = engine.nfe
    times, rss = [], {}
    for i in range(1, frames):
        t = time.perf_counter()
        engine.step(s, actions[i])
        times.append((time.perf_counter() - t) * 1000)
        if i + 1 == 100:
            rss["100"] = rss_mb()
    rss["last"] = rss_mb()
    times_arr = np.array(times)
    q = max(1, len(times_arr) // 10)
    return {"first_frame_ms": first_ms, "times": times_arr, "nfe_per_frame": (engine.nfe - nfe0) / max(1, frames - 1),
            "rss": rss, "kv_cache_bytes": s.cache.nbytes(), "cache_frames": len(s.cache),
            "bank": int(s.memory.count.max()) if s.memory is not None else None,
            "ms_first_tenth": float(np.median(times_arr[:q])), "ms_last_tenth": float(np.median(times_arr[-q:]))}


def bench_engine(checkpoint: str | None = None, frames: int = 300, steps: int | None = None, threads: int | None = None,
                 sweep: tuple[int, ...] = (1, 2, 4, 8), sweep_frames: int = 60, guidance: float = 1.0,
                 memory_units: int = 0, top_k: int = 16) -> dict:
    """A stream of `frames` frames (the first one timed apart), then a sweep over step counts.
    memory_units > 0: with a bank of that many units that fills as frames leave the window
    (untrained memory layers if the world has none: for timing only)."""
    engine = WorldEngine.load(checkpoint, steps=steps, threads=threads, guidance=guidance)
    steps = engine.steps  # None: the world's own
    memory_note = _with_memory(engine, memory_units, top_k) if memory_units else None
    gflops = matmul_gflops()
    params = sum(p.numel() for p in engine.model.parameters())
    warm = engine.new_session(seed=99)
    for _ in range(5):
        engine.step(warm, [])
    with FlopCounterMode(display=False) as fc:
        engine.step(warm, [])
    gflop = fc.get_total_flops() / 1e9
    main = run_stream(engine, frames)
    bank = main["bank"]
    t = main["times"]
    sweep_rows = []
    for k in sweep:
        engine.steps = k
        r = run_stream(engine, sweep_frames, seed=1)
        with FlopCounterMode(display=False) as fc:
            engine.step(warm, [])
        sweep_rows.append({"steps": k, "ms_p50": round(float(np.median(r["times"])), 2),
                           "fps_p50": round(1000 / float(np.median(r["times"])), 1), "gflop": round(fc.get_total_flops() / 1e9, 3)})
    engine.steps = steps
    p50, p95 = float(np.percentile(t, 50)), float(np.percentile(t, 95))
    res = {
        "bench": "engine", "world": engine.meta["world"]["world"], "checkpoint": engine.meta["path"],
        "frame_size": f"{engine.frame_size[0]}x{engine.frame_size[1]}", "steps": steps, "frames": frames,
        "fps_p50": round(1000 / p50, 1), "ms_per_frame_p50": round(p50, 2), "ms_per_frame_p95": round(p95, 2),
        "action_latency_ms_p50": round(p50, 2), "first_frame_ms": round(main["first_frame_ms"], 1),
        "guidance": guidance, "solver": engine.solver,
        "nfe_per_frame": round(main["nfe_per_frame"], 2), "passes_per_frame": engine.passes_per_frame,
        "gflop_per_frame": round(gflop, 3),
        "matmul_gflops": round(gflops, 1), "flop_limit_fps": round(gflops / max(gflop, 1e-9), 1),
        "params_m": round(params / 1e6, 2), "kv_cache_bytes": main["kv_cache_bytes"], "cache_frames": main["cache_frames"],
        "peak_rss_mb": round(peak_rss_mb(), 1), "rss_mb_frame_100": round(main["rss"]["100"], 1) if "100" in main["rss"] else None,
        "rss_mb_last": round(main["rss"]["last"], 1),
        "ms_first_tenth": round(main["ms_first_tenth"], 2), "ms_last_tenth": round(main["ms_last_tenth"], 2),
        "fps_by_steps": sweep_rows, "threads": torch.get_num_threads(), "machine": machine_description(),
        "memory_units": memory_units, "memory_top_k": top_k if memory_units else None, "memory_units_held": bank,
        "memory_note": memory_note,
        "date": date.today().isoformat(),
    }
    print(f"engine benchmark: {res['world']} at {res['frame_size']}, {steps} step(s), guidance {guidance}, {frames} frames, "
          f"{res['threads']} threads; this machine's fp32 matmul now: {res['matmul_gflops']} GFLOP/s")
    rows = [("FPS (p50)", res["fps_p50"]), ("ms per frame p50 / p95", f"{res['ms_per_frame_p50']} / {res['ms_per_frame_p95']}"),
            ("action-to-frame latency (engine)", f"{res['action_latency_ms_p50']} ms"), ("time to first frame", f"{res['first_frame_ms']} ms"),
            ("frame evaluations / passes per frame", f"{res['nfe_per_frame']} / {res['passes_per_frame']}"),
            ("GFLOP per frame", res["gflop_per_frame"]),
            ("FLOP-limit FPS (at the matmul rate)", res["flop_limit_fps"]),
            ("parameters", f"{res['params_m']} M"), ("KV cache", f"{res['kv_cache_bytes'] / 1024:.0f} KiB ({res['cache_frames']} frames)"),
            ("RSS at frame 100 / last", f"{res['rss_mb_frame_100']} / {res['rss_mb_last']} MB"), ("peak RSS", f"{res['peak_rss_mb']} MB"),
            ("ms per frame, first / last tenth", f"{res['ms_first_tenth']} / {res['ms_last_tenth']}")]
    if memory_units:
        rows.append(("memory units held at the end / bank", f"{bank} / {memory_units}, top-{top_k} reads ({memory_note})"))
    for k, v in rows:
        print(f"  {k:<38} {v}")
    print(f"  {'steps':>5} {'ms p50':>8} {'FPS':>7} {'GFLOP':>7}")
    for r in sweep_rows:
        print(f"  {r['steps']:>5} {r['ms_p50']:>8} {r['fps_p50']:>7} {r['gflop']:>7}")
    print(json.dumps(res))
    return res


def _with_memory(engine: WorldEngine, units: int, top_k: int) -> str:
    """The engine's model with a bank of `units` units: the model's own, or (a world trained
    without memory) the same weights plus untrained memory layers, which time the same."""
    import dataclasses

    from liveworld.model.omni import OmniWorldModel

    cfg = engine.model.cfg
    note = "trained memory layers"
    if cfg.memory_units != units:
        note = "memory layers added untrained: for timing only" if not cfg.memory_units else "bank resized: for timing only"
        grid = engine.grid
        patch = cfg.memory_patch if grid[0] % cfg.memory_patch == 0 and grid[1] % cfg.memory_patch == 0 else 1
        new = dataclasses.replace(cfg, memory_units=units, memory_patch=patch)
        model = OmniWorldModel(new).to(engine.device).eval()
        model.load_state_dict(engine.model.state_dict(), strict=False)
        engine.model = model
    engine.memory = True
    engine.model.read_top_k = top_k
    return note


def _fill_bank_n(engine: WorldEngine, s, count: int) -> None:
    """Puts `count` units of random latents in the session's bank (timing does not depend on them)."""
    cfg = engine.model.cfg
    gen = torch.Generator().manual_seed(0)
    for n in range(count):
        video = torch.randn((1, cfg.video_channels, *engine.grid), generator=gen).to(engine.device)
        units = summarize(video, cfg.memory_patch)
        slot = int(s.memory.add(-10 * (n + 1), units)[0])
        s.cache.write_unit(slot, engine.model.memory_kv(units, -10 * (n + 1), engine.grid))


def bench_memory(checkpoint: str | None = None, units: int = 256, top_k: int = 16, frames: int = 60,
                 threads: int | None = None) -> dict:
    """Time per frame and per attention call against memory size, dense against sparse reads."""
    from liveworld.model.attention import MemoryRead, attend

    engine = WorldEngine.load(checkpoint, threads=threads)
    gflops = matmul_gflops()
    note = _with_memory(engine, units, top_k)
    cfg = engine.model.cfg
    rows = []
    for n in sorted({0, min(64, units), units}):
        for k in ((0,) if n == 0 else (0, top_k)):
            engine.model.read_top_k = k
            s = engine.new_session(seed=0)
            if n:  # n units held; filling never evicts, since n <= the capacity
                _fill_bank_n(engine, s, n)
            times = []
            for i in range(frames):
                t = time.perf_counter()
                engine.step(s, [])
                times.append((time.perf_counter() - t) * 1000)
            # the attention of one frame's queries over text, n units and the window, alone
            H, Dh, N = cfg.heads, cfg.head_dim, engine.layout.tokens_per_frame
            m = s.cache.unit_tokens
            Lk = cfg.text_len + n * m + (engine.window + 1) * N
            q, kk, vv = torch.randn(1, H, N, Dh), torch.randn(1, H, Lk, Dh), torch.randn(1, H, Lk, Dh)
            read = None
            if n:  # the units' mean keys are the cache's, computed when each unit entered the bank
                means = kk[:, :, cfg.text_len:cfg.text_len + n * m].reshape(1, H, n, m, Dh).mean(3)
                read = MemoryRead(cfg.text_len, n, m, ((0, N),), k, mean_keys=(means,))
            for _ in range(20):
                attend(q, kk, vv, None, read)
            t = time.perf_counter()
            for _ in range(200):
                attend(q, kk, vv, None, read)
            att_us = (time.perf_counter() - t) / 200 * 1e6
            ms = float(np.median(times[frames // 3:]))
            rows.append({"units": n, "top_k": k or None, "ms_per_frame_p50": round(ms, 2), "fps_p50": round(1000 / ms, 1),
                         "attention_us": round(att_us, 1), "memory_keys": n * m})
    res = {"bench": "engine_memory", "checkpoint": engine.meta["path"], "note": note, "unit_tokens": m,
           "rows": rows, "matmul_gflops": round(gflops, 1), "threads": torch.get_num_threads(),
           "machine": machine_description(), "date": date.today().isoformat()}
    print(f"memory benchmark ({note}), {m} tokens a unit, {res['threads']} thread(s); matmul {res['matmul_gflops']} GFLOP/s")
    print(f"  {'units':>6} {'top-k':>6} {'keys':>6} {'ms/frame':>9} {'FPS':>6} {'attention us':>13}")
    for r in rows:
        print(f"  {r['units']:>6} {str(r['top_k'] or 'all'):>6} {r['memory_keys']:>6} {r['ms_per_frame_p50']:>9} {r['fps_p50']:>6} {r['attention_us']:>13}")
    print(json.dumps(res))
    return res
