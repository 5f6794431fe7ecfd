"""`liveworld bench serve`: players on loopback WebSockets against a real `liveworld play` server.

Two phases in one run, against one server process:
    single      one client alone for `seconds`: the frame rate one player gets
    load        `clients` clients at once for `seconds`, holding keys like players (a new key
                combination every 0.3-1.2 s); optionally, beside them, `fuzz` malformed messages
                and `churn` connections opened and dropped (a hostile or broken client)

Per client: frames per second, action-to-frame latency (a key change until the first frame the
server says it made with it: the header's ack_t), the longest gap between frames (a stall), and
the frames the server counted as late. The server's RSS is sampled from /proc every 0.5 s from
the moment all players have their sessions (so growth means a leak, not the players' caches).
Prints a table, then one JSON line last.

Knows the protocol (serve/app.py) and processes; knows nothing about the model.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from datetime import date

import numpy as np

from liveworld.common import LiveworldError, machine_description, rss_mb

KEYS = [["KeyW"], ["KeyA"], ["KeyD"], ["KeyW", "KeyA"], ["KeyW", "KeyD"], ["Space"], []]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Player:
    """One legitimate client: holds keys, reads frames, keeps its figures."""

    def __init__(self, url: str, seed: int):
        self.url, self.rng = url, random.Random(seed)
        self.frames: list[float] = []  # arrival times
        self.latency_ms: list[float] = []
        self.pending: dict[float, float] = {}  # key-change t -> when it was sent
        self.missed = 0
        self.error = ""
        self.ready = asyncio.Event()  # set at the first frame
        self.window = (0.0, 0.0)  # when the player played

    async def run(self, seconds: float) -> None:
        from websockets.asyncio.client import connect

        try:
            async with connect(self.url, max_size=None, open_timeout=30) as ws:
                reader = asyncio.create_task(self._read(ws))
                await asyncio.wait_for(self.ready.wait(), 60)
                start = time.perf_counter()
                end = start + seconds
                self.window = (start, end)
                while time.perf_counter() < end:
                    t = round(time.perf_counter() * 1000, 3)
                    self.pending[t] = time.perf_counter()
                    await ws.send(json.dumps({"type": "keys", "keys": self.rng.choice(KEYS), "t": t}))
                    await asyncio.sleep(min(self.rng.uniform(0.3, 1.2), max(0.0, end - time.perf_counter())))
                reader.cancel()
        except Exception as e:  # a refused or dropped player is a result, not a crash of the bench
            self.error = f"{type(e).__name__}: {e}"

    async def _read(self, ws) -> None:
        async for msg in ws:
            if isinstance(msg, str):
                continue
            now = time.perf_counter()
            n = struct.unpack("<I", msg[:4])[0]
            header = json.loads(msg[4:4 + n])
            self.ready.set()
            if header["index"] == 0:
                continue  # the opening frame, before the clock starts
            self.frames.append(now)
            self.missed = header["missed"]
            sent = self.pending.pop(header.get("ack_t"), None)
            if sent is not None:
                self.latency_ms.append((now - sent) * 1000)

    def figures(self, seconds: float) -> dict:
        f = np.array([t for t in self.frames if self.window[0] <= t <= self.window[1]])
        gaps = np.diff(f) if len(f) > 1 else np.array([float("nan")])
        return {"fps": len(f) / seconds, "latency": self.latency_ms, "max_gap_s": float(gaps.max()) if len(f) > 1 else float("nan"),
                "missed": self.missed, "error": self.error}


def _bad_messages(rng: random.Random) -> list:
    """Text and binary messages a broken or hostile client sends: each gets an error reply or a
    closed connection, never a crash."""
    deep = "[" * 3000 + "]" * 3000
    return [rng.choice([
        "{not json", '{"type": "keys", "keys": "KeyW"}', '{"type": "teleport"}', '{"type": "ping", "t": NaN}',
        '{"type": "keys", "keys": [], "t": Infinity}', deep[:4000], "x" * 5000, json.dumps([1, 2, 3]),
        json.dumps({"type": "text", "text": "y" * 300}), b"\x00\x01\x02", b"\xff\xfe" * 100,
        '{"type": "keys", "keys": ["KeyW"' + ", \"KeyA\"" * 40 + "]}",
    ]) for _ in range(64)]


async def _fuzz(url: str, count: int, seed: int) -> dict:
    """`count` malformed messages over successive connections (a connection the server closes,
    for an oversized message, say, is replaced)."""
    from websockets.asyncio.client import connect

    rng, sent, closed = random.Random(seed), 0, 0
    while sent < count:
        try:
            async with connect(url, max_size=None, open_timeout=30) as ws:
                for msg in _bad_messages(rng):
                    if isinstance(msg, bytes) and msg.startswith(b"\xff"):
                        await ws.send(msg, text=True)  # invalid UTF-8 in a text frame
                    else:
                        await ws.send(msg)
                    sent += 1
                    if sent % 16 == 0:
                        await asyncio.sleep(0.001)
                    if sent >= count:
                        break
        except Exception:
            closed += 1
    return {"fuzz_messages": sent, "fuzz_connections_closed_by_server": closed}


async def _churn(url: str, count: int) -> dict:
    """`count` connections opened and dropped at once or after their first message."""
    from websockets.asyncio.client import connect

    done = 0
    for i in range(count):
        try:
            async with connect(url, max_size=None, open_timeout=30) as ws:
                if i % 2:
                    await asyncio.wait_for(ws.recv(), 5)
        except Exception:
            pass
        done += 1
    return {"churns": done}


async def _phase(url: str, clients: int, seconds: float, pid: int, fuzz: int = 0, churn: int = 0, seed: int = 0):
    players = [Player(url, seed + i) for i in range(clients)]
    stop = asyncio.Event()

    async def sample():
        while not stop.is_set():
            await asyncio.sleep(0.5)
            rss.append(rss_mb(pid))

    runs = [asyncio.create_task(p.run(seconds)) for p in players]
    for p in players:  # every player holds its slot and has its first frame before anything else starts
        await asyncio.wait_for(p.ready.wait(), 120)
    await asyncio.sleep(1.0)
    rss = [rss_mb(pid)]  # warm: the players' sessions exist
    sampler = asyncio.create_task(sample())
    extra = [asyncio.create_task(_fuzz(url, fuzz, seed))] if fuzz else []
    extra += [asyncio.create_task(_churn(url, churn))] if churn else []
    await asyncio.gather(*runs)
    others = {}
    for r in await asyncio.gather(*extra):
        others.update(r)
    stop.set()
    await sampler
    rss.append(rss_mb(pid))
    return [p.figures(seconds) for p in players], rss, others


def _served_steps(checkpoint: str | None, steps: int | None) -> int:
    """The flow steps the server samples with: `steps`, else the world's own (world.sampling_steps)."""
    from liveworld.bundled import bundled_checkpoint
    from liveworld.checkpoint import read_checkpoint_meta
    from liveworld.world import resolve_checkpoint, sampling_steps

    return sampling_steps(read_checkpoint_meta(resolve_checkpoint(checkpoint or bundled_checkpoint())), steps)


def bench_serve(checkpoint: str | None = None, clients: int = 4, seconds: float = 20.0, fps: float | None = None,
                threads: int | None = None, fuzz: int = 0, churn: int = 0, steps: int | None = None) -> dict:
    port = _free_port()
    cmd = [sys.executable, "-m", "liveworld.cli"] + (["--threads", str(threads)] if threads else []) + [
        "play", "--port", str(port), "--max-players", str(clients + 1)] + (["--steps", str(steps)] if steps else [])
    cmd += ["--checkpoint", checkpoint] if checkpoint else []
    cmd += ["--fps", str(fps)] if fps else []
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                info = json.loads(urllib.request.urlopen(base + "/info", timeout=2).read())
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise LiveworldError(f"the server did not start:\n{server.stdout.read()}")
                time.sleep(0.3)
        url = base.replace("http", "ws") + "/ws"
        single, _, _ = asyncio.run(_phase(url, 1, seconds, server.pid, seed=100))
        load, rss, others = asyncio.run(_phase(url, clients, seconds, server.pid, fuzz, churn, seed=200))
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            log = server.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            log = ""
    lat = [x for c in load for x in c["latency"]]
    fps_list = [round(c["fps"], 2) for c in load]
    res = {
        "bench": "serve", "world": info["world"], "clients": clients, "seconds": seconds, "world_fps": round(info["fps"], 2),
        "single_client_fps": round(single[0]["fps"], 2), "aggregate_fps": round(sum(fps_list), 2), "client_fps": fps_list,
        "client_fps_spread": round((max(fps_list) - min(fps_list)) / max(max(fps_list), 1e-9), 3),
        "aggregate_over_single": round(sum(fps_list) / max(single[0]["fps"], 1e-9), 2),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat else None,
        "single_latency_ms_p95": round(float(np.percentile(single[0]["latency"], 95)), 1) if single[0]["latency"] else None,
        "late_frames": [c["missed"] for c in load], "max_stall_s": round(max(c["max_gap_s"] for c in load), 3),
        "client_errors": [c["error"] for c in load if c["error"]],
        "rss_mb_start": round(rss[0], 1), "rss_mb_end": round(rss[-1], 1), "rss_mb_max": round(max(rss), 1),
        "rss_growth": round(rss[-1] / rss[0] - 1, 4), "server_alive": alive, "server_tracebacks": log.count("Traceback"),
        "server_first_traceback": log[log.index("Traceback"):][:1500] if "Traceback" in log else None,
        **others, "steps": _served_steps(checkpoint, steps), "threads": threads, "machine": machine_description(), "date": date.today().isoformat(),
    }
    rows = [("world clock", f"{res['world_fps']} FPS"), ("single client", f"{res['single_client_fps']} FPS"),
            (f"{clients} clients", f"{res['aggregate_fps']} FPS in all ({res['aggregate_over_single']}x single): {fps_list}"),
            ("spread between clients", f"{100 * res['client_fps_spread']:.1f}%"),
            ("action-to-frame p50 / p95", f"{res['latency_ms_p50']} / {res['latency_ms_p95']} ms (single p95 {res['single_latency_ms_p95']})"),
            ("late frames (past the promise)", str(res["late_frames"])), ("longest stall", f"{res['max_stall_s']} s"),
            ("server RSS start / end / max", f"{res['rss_mb_start']} / {res['rss_mb_end']} / {res['rss_mb_max']} MB"),
            ("server alive, tracebacks", f"{alive}, {res['server_tracebacks']}")]
    if fuzz or churn:
        rows.append(("malformed messages, churns", f"{others.get('fuzz_messages', 0)}, {others.get('churns', 0)}"))
    print(f"serve benchmark: {info['world']}, {clients} clients x {seconds:.0f} s on loopback")
    for k, v in rows:
        print(f"  {k:<32} {v}")
    print(json.dumps(res))
    return res
