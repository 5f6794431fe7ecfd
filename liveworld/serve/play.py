"""`liveworld play`: the world in the browser (a local server on 127.0.0.1), or `--headless`:
the stream written to a video file with its sound, driven by random or scripted actions.

Knows the engine, uvicorn and PyAV; the page and the protocol live in serve/app.py.
"""

from __future__ import annotations

import json
import logging
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from liveworld.common import LiveworldError
from liveworld.engine.runner import WorldEngine


def _one_line_for_bad_utf8(record: logging.LogRecord) -> bool:
    """uvicorn closes a WebSocket that sends invalid UTF-8 (1007, as it should) but logs a
    traceback, and a second bad frame on the closing connection raises again inside asyncio's
    callback (uvicorn's sans-I/O WebSocket protocol, 0.55); one line says the same."""
    err = record.exc_info[1] if record.exc_info else None
    while err is not None and not isinstance(err, UnicodeDecodeError):
        err = err.__cause__ or err.__context__
    if err is not None:
        record.msg, record.args, record.exc_info, record.exc_text = "a client sent invalid UTF-8; closed it (1007)", (), None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def serve(engine: WorldEngine | dict[str, WorldEngine], host: str = "127.0.0.1", port: int = 8000, fps: float | None = None, seed: int = 0,
          token: str | None = None, allow_origins: tuple[str, ...] = (), api_docs: bool = False, max_clients: int = 4,
          idle_timeout: float = 120.0, prompt: str | None = None) -> None:
    """Serves the page and the stream. A loopback bind answers only to loopback names and pages;
    any other bind needs a token on every connection (serve/access.py): the given one, or a new
    one printed in the URL."""
    import uvicorn

    from liveworld.serve.access import Access, is_loopback
    from liveworld.serve.app import MAX_MESSAGE_BYTES, create_app

    try:
        access = Access.for_bind(host, token, allow_origins)
    except ValueError as e:
        raise LiveworldError(str(e)) from None
    app = create_app(engine, fps, max_clients=max_clients, seed=seed, access=access, api_docs=api_docs,
                     idle_timeout=idle_timeout, prompt=prompt)
    name = ", ".join(engine) if isinstance(engine, dict) else engine.world
    if access.token is None:
        print(f"liveworld: {name} at http://{'localhost' if is_loopback(host) else host}:{port}/  (Ctrl+C to stop)", flush=True)
    else:
        shown = host if host not in ("0.0.0.0", "::") else "THIS-MACHINE"
        print(f"liveworld: {name} on {host}:{port}, reachable beyond this machine; anyone with this URL can play:\n"
              f"  http://{shown}:{port}/?token={access.token}\n(Ctrl+C to stop)", flush=True)
    for name in ("uvicorn.error", "asyncio"):
        logging.getLogger(name).addFilter(_one_line_for_bad_utf8)
    # ws_max_size: uvicorn closes a connection (1009) whose message is over the limit before buffering it
    uvicorn.run(app, host=host, port=port, log_level="warning", ws_max_size=MAX_MESSAGE_BYTES, server_header=False)


def random_actions(engine: WorldEngine, frames: int, seed: int = 0) -> list[list[str]]:
    """Held random button combinations, like a player would press them (4-12 frames each)."""
    rng = np.random.default_rng(seed)
    names = engine.action_space.names
    out: list[list[str]] = []
    while len(out) < frames:
        k = int(rng.integers(0, 3)) if engine.action_space.kind == "buttons" else 1
        combo = sorted(rng.choice(names, size=k, replace=False).tolist()) if k else []
        out += [combo] * int(rng.integers(4, 13))
    return out[:frames]


def actions_from_file(path: str, frames: int) -> list[list[str]]:
    """One frame per line: a JSON list of button names, or names separated by commas (an empty
    line is no action). Shorter files repeat."""
    p = Path(path)
    if not p.exists():
        raise LiveworldError(f"actions file {path} does not exist; give random or a file with one action per line")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        line = line.strip()
        try:
            row = json.loads(line) if line.startswith("[") else [n.strip() for n in line.split(",") if n.strip()]
        except json.JSONDecodeError as e:
            raise LiveworldError(f"{path}:{i}: not a JSON list of action names ({e.msg})") from e
        if not isinstance(row, list) or not all(isinstance(n, str) for n in row):
            raise LiveworldError(f"{path}:{i}: expected a list of action names")
        rows.append(row)
    if not rows:
        raise LiveworldError(f"actions file {path} is empty")
    return [rows[i % len(rows)] for i in range(frames)]


AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def headless(engine: WorldEngine, frames: int, actions: str, out: str, seed: int = 0, scale: int = 4,
             prompt: str | None = None) -> dict:
    """Streams `frames` frames into a video file; `prompt`: start from that text alone."""
    import av

    acts = random_actions(engine, frames, seed) if actions == "random" else actions_from_file(actions, frames)
    for row in acts:  # fail before writing anything
        engine.action_vector(row)
    session = engine.new_session(seed=seed, prompt=prompt)
    w, h = engine.frame_size
    rate = engine.sample_rate_hz
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp{out_path.suffix}")
    container = av.open(str(tmp), mode="w")
    vs = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                              rate=Fraction(engine.fps).limit_denominator(1000))
    vs.width, vs.height, vs.pix_fmt = w * scale, h * scale, "yuv420p"
    audio_stream = container.add_stream("aac", rate=rate) if rate in AAC_RATES and engine.tok.audio is not None else None
    if rate and rate not in AAC_RATES and engine.tok.audio is not None:
        print(f"note: {engine.world} plays sound at {rate} Hz, which AAC cannot store; the video has no sound track")
    times = []
    pts = 0
    try:
        for row in acts:
            t0 = time.perf_counter()
            frame, sound = engine.step(session, row)
            times.append((time.perf_counter() - t0) * 1000)
            big = frame.repeat(scale, 0).repeat(scale, 1)
            for packet in vs.encode(av.VideoFrame.from_ndarray(big, format="rgb24")):
                container.mux(packet)
            if audio_stream is not None and sound is not None:
                layout = "stereo" if sound.shape[1] == 2 else "mono"
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound.reshape(1, -1)), format="s16", layout=layout)
                af.sample_rate, af.pts = rate, pts
                pts += sound.shape[0]
                for packet in audio_stream.encode(af):
                    container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        if audio_stream is not None:
            for packet in audio_stream.encode():
                container.mux(packet)
    finally:
        container.close()
    tmp.replace(out_path)
    res = {"out": str(out_path), "frames": frames, "ms_per_frame_p50": round(float(np.median(times)), 2),
           "fps_p50": round(1000 / float(np.median(times)), 1), "audio": audio_stream is not None}
    print(json.dumps(res))
    return res
