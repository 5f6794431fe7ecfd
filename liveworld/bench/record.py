"""`liveworld bench record`: how fast each world records, and how big its shards are.

For each world, one episode of up to `steps` frames (the explore policy, a fixed seed) is played
twice: once only simulating and choosing actions (the simulator's frames/s), once also writing
the compressed shard to a temporary directory (frames/s end to end, bytes per frame on disk).
The same seed gives the same episode both times, so the difference is the cost of storage.
World start-up (loading a ROM, starting ViZDoom) is not timed: it is paid once per run.
Prints a table, then one JSON line last.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from liveworld.common import LiveworldError
from liveworld.data.record import record_episode
from liveworld.data.shards import write_episode
from liveworld.data.worlds import make_world

WORLDS = ("doom:deathmatch", "atari:Breakout", "babyai:GoToRedBall-v0", "minigrid:Empty-8x8-v0")
POLICY = "explore"
SEED = 0


def bench_world(name: str, steps: int, tmp: Path) -> dict:
    world = make_world(name)
    try:
        # Untimed warm-up: first calls pay for lazy imports, font and texture loading.
        record_episode(world, POLICY, SEED, min(steps, 10))
        t = time.perf_counter()
        ep = record_episode(world, POLICY, SEED, steps)
        sim_s = time.perf_counter() - t
        t = time.perf_counter()
        ep = record_episode(world, POLICY, SEED, steps)
        nbytes = write_episode(tmp / f"{name.replace(':', '_')}.npz", ep)
        record_s = time.perf_counter() - t
    finally:
        world.close()
    T, H, W = ep.frames.shape[:3]
    return {
        "frames": T,  # fewer than steps if the game ended
        "frame_size": f"{W}x{H}",
        "sim_fps": round(T / sim_s, 1),
        "record_fps": round(T / record_s, 1),
        "bytes_per_frame": round(nbytes / T),
        "raw_bytes_per_frame": int(ep.frames[0].nbytes + ep.audio.nbytes / T + ep.actions[0].nbytes),
        "audio": f"{ep.meta['sample_rate_hz']} Hz x{ep.audio.shape[1]}" if ep.has_audio else "none",
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.machine()} {cpu}, {os.cpu_count()} cores, python {platform.python_version()}"


def print_table(res: dict) -> None:
    cols = ["world", "frames", "size", "sim fps", "record fps", "bytes/frame", "ratio", "audio"]  # ratio: raw / stored
    rows = []
    for name, r in res["worlds"].items():
        if "error" in r:
            rows.append([name, "-", "-", "-", "-", "-", "-", r["error"][:60]])
            continue
        rows.append([name, str(r["frames"]), r["frame_size"], f"{r['sim_fps']:,.0f}", f"{r['record_fps']:,.0f}",
                     f"{r['bytes_per_frame']:,}", f"{r['raw_bytes_per_frame'] / max(r['bytes_per_frame'], 1):.1f}x",
                     r["audio"]])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain aligned text
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
        print(f"record benchmark ({res['policy']} policy, seed {res['seed']}, up to {res['steps']} steps)")
        for row in [cols, *rows]:
            print("  ".join(v.rjust(w) if 0 < i < 6 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
        return
    table = Table(title=f"record benchmark ({res['policy']} policy, seed {res['seed']}, up to {res['steps']} steps)")
    for i, c in enumerate(cols):
        table.add_column(c, justify="right" if 0 < i < 6 else "left")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped or captured: rich would assume 80 columns and wrap
        console = Console(width=120)
    console.print(table)


def bench_record(steps: int = 600, as_json: bool = False, worlds: tuple[str, ...] = WORLDS) -> dict:
    """Records one episode per world twice (simulation only, then with the shard written);
    prints a table (unless as_json) and then one JSON line; returns that JSON's dict."""
    if steps < 1:
        raise LiveworldError(f"--steps must be positive, got {steps}")
    res = {"bench": "record", "steps": steps, "policy": POLICY, "seed": SEED, "worlds": {}}
    with tempfile.TemporaryDirectory(prefix="liveworld-bench-") as tmp:
        for name in worlds:
            try:
                res["worlds"][name] = bench_world(name, steps, Path(tmp))
            except (LiveworldError, ImportError) as e:  # a world that cannot start is reported, not fatal
                res["worlds"][name] = {"error": f"{type(e).__name__}: {e}"}
    res.update({"threads": torch.get_num_threads(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": machine()})
    if not as_json:
        print_table(res)
    print(json.dumps(res), flush=True)
    return res
