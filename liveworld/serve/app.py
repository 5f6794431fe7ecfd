"""The web server: FastAPI + one WebSocket per player, the page in serve/static/.

Protocol on /ws (all client messages are JSON text, at most MAX_MESSAGE_BYTES):
    {"type": "keys", "keys": ["KeyW", "Space"], "t": <client ms>}   the keys held now
    {"type": "text", "text": "..."}                                  change the text condition
    {"type": "reset"}                                                start over
    {"type": "reset", "prompt": "..."}                               start over from this text alone
A checkpoint of several worlds serves each: /info?world=NAME and /ws?world=NAME (default: the
first); /info lists them all under "worlds".
    {"type": "ping", "t": <client ms>}                               answered with "pong"
The server answers a bad message (not JSON, NaN or Infinity, nested deeper than MAX_DEPTH, a
wrong field) with {"type": "error", "message": ...} and keeps serving; `liveworld play` has
uvicorn close a connection whose message is over MAX_MESSAGE_BYTES before buffering it.
Who may connect at all is serve/access.py's business (Host, Origin, token).
Frames go out as binary messages: uint32 little-endian header length, a JSON header (frame
index, width, height, audio samples and channels, step_ms, ack_t, missed deadlines), the RGB
bytes, then the int16 audio bytes.

Knows HTTP and the protocol; the model runs only in serve/worker.py's thread.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse

from liveworld.engine.runner import WorldEngine
from liveworld.serve.access import Access, AccessMiddleware
from liveworld.serve.worker import EXPIRED, Client, FrameMessage, ModelWorker, Notice
from liveworld.serve.keys import keymap_for_names

STATIC = Path(__file__).parent / "static"
MAX_MESSAGE_BYTES = 4096
MAX_TEXT_CHARS = 200
MAX_DEPTH = 4  # {"type": ..., "keys": [...]} is depth 2
RESET_INTERVAL_S = 1.0  # a reset opens a whole new session on the model thread: at most one a second


def _no_constants(name: str):
    raise ValueError(f"message has {name}; numbers must be finite")


def _depth(x, limit: int, level: int = 1) -> int:
    if level > limit:
        return level
    if isinstance(x, dict):
        return max([_depth(v, limit, level + 1) for v in x.values()], default=level)
    if isinstance(x, list):
        return max([_depth(v, limit, level + 1) for v in x], default=level)
    return level - 1


def keymap_for(engine: WorldEngine) -> dict[str, str]:
    return keymap_for_names(engine.action_space.names)


def encode_frame(msg: FrameMessage) -> bytes:
    h, w = msg.frame.shape[:2]
    audio = msg.audio if msg.audio is not None else None
    header = {"type": "frame", "index": msg.index, "width": w, "height": h, "step_ms": round(msg.step_ms, 2),
              "ack_t": msg.ack_t, "missed": msg.missed, "text": msg.text, "promised_fps": round(msg.promised_fps, 2),
              "audio_samples": 0 if audio is None else int(audio.shape[0]),
              "audio_channels": 0 if audio is None else int(audio.shape[1])}
    hb = json.dumps(header).encode()
    parts = [struct.pack("<I", len(hb)), hb, msg.frame.tobytes()]
    if audio is not None:
        parts.append(audio.astype("<i2").tobytes())
    return b"".join(parts)


def parse_message(raw: str, keymap: dict[str, str]) -> tuple[str, dict]:
    """-> (kind, payload) or raises ValueError with the message to send back."""
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {size} bytes is over the limit of {MAX_MESSAGE_BYTES}")
    try:
        msg = json.loads(raw, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise ValueError(f"message is not JSON ({e.msg})") from None
    except RecursionError:
        raise ValueError(f"message is nested deeper than {MAX_DEPTH} levels") from None
    if _depth(msg, MAX_DEPTH) > MAX_DEPTH:
        raise ValueError(f"message is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ValueError('message must be a JSON object with a "type"')
    kind = msg["type"]
    if kind == "keys":
        keys = msg.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(keys) > 16:
            raise ValueError('"keys" must be a list of at most 16 key codes')
        t = msg.get("t")
        actions = sorted({keymap[k] for k in keys if k in keymap})
        return "keys", {"actions": actions, "t": _finite(t)}
    if kind == "text":
        text = msg.get("text")
        if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
            raise ValueError(f'"text" must be a string of at most {MAX_TEXT_CHARS} characters')
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError('"text" has a lone surrogate (\\ud800-\\udfff escape); send valid Unicode') from None
        return "text", {"text": text}
    if kind == "reset" and msg.get("prompt") is not None:  # start over from text alone
        prompt = msg["prompt"]
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_TEXT_CHARS:
            raise ValueError(f'"prompt" must be a non-empty string of at most {MAX_TEXT_CHARS} characters')
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError('"prompt" has a lone surrogate (\\ud800-\\udfff escape); send valid Unicode') from None
        return kind, {"t": _finite(msg.get("t")), "prompt": prompt}
    if kind in ("reset", "ping"):
        return kind, {"t": _finite(msg.get("t"))}
    raise ValueError(f"unknown message type {kind!r}; expected keys, text, reset or ping")


def _finite(t) -> float | None:
    """A client timestamp echoed back: a finite number or nothing (json.dumps would write NaN,
    which browsers cannot parse)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        return None
    t = float(t)
    return t if math.isfinite(t) else None


def create_app(engine: WorldEngine | dict[str, WorldEngine], fps: float | None = None, max_clients: int = 4, seed: int = 0,
               access: Access | None = None, api_docs: bool = False, idle_timeout: float = 120.0,
               prompt: str | None = None) -> FastAPI:
    """The app, behind `access` (default: loopback only, no token). `engine`: one world, or
    {name: engine} for the worlds of one checkpoint (the page offers them; each has its own
    model thread and players). api_docs serves /docs and /openapi.json (off by default: they
    tell a stranger what to send). A client that sends nothing for idle_timeout seconds loses
    its slot (serve/worker.py). `prompt`: players start from this text alone (not from real
    opening frames)."""
    engines = engine if isinstance(engine, dict) else {engine.world: engine}
    first = next(iter(engines))
    workers = {w: ModelWorker(e, fps, max_clients, seed, idle_timeout, prompt=prompt) for w, e in engines.items()}
    keymaps = {w: keymap_for(e) for w, e in engines.items()}
    worker = workers[first]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for wk in workers.values():
            wk.start()
        yield
        for wk in workers.values():
            wk.stop()

    docs = {} if api_docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="liveworld", lifespan=lifespan, **docs)
    app.state.worker = worker
    app.state.workers = workers
    app.state.access = access or Access()
    app.add_middleware(AccessMiddleware, access=app.state.access)

    def pick(world: str | None) -> str:
        if world is None or world == "":
            return first
        if world not in engines:
            raise KeyError(f"no world {world!r} here; the worlds are {', '.join(engines)}")
        return world

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return (STATIC / "index.html").read_text()

    @app.get("/info")
    async def info(world: str | None = None) -> JSONResponse:
        try:
            name = pick(world)
        except KeyError as e:
            return JSONResponse({"error": str(e.args[0])}, status_code=404)
        e = engines[name]
        w, h = e.frame_size
        return JSONResponse({"world": name, "width": w, "height": h, "fps": 1.0 / workers[name].period,
                             "sample_rate_hz": e.sample_rate_hz, "keymap": keymaps[name], "steps": e.steps,
                             "actions": e.action_space.names, "description": e.description,
                             "worlds": [{"name": n, "description": x.description, "width": x.frame_size[0],
                                         "height": x.frame_size[1]} for n, x in engines.items()]})

    @app.websocket("/ws")
    async def ws(socket: WebSocket, world: str | None = None) -> None:
        await socket.accept()
        try:
            name = pick(world)
        except KeyError as e:
            await socket.send_text(json.dumps({"type": "error", "message": str(e.args[0])}))
            await socket.close()
            return
        worker, keymap = workers[name], keymaps[name]
        client: Client | None = worker.add(asyncio.get_running_loop())
        if client is None:
            await socket.send_text(json.dumps({"type": "error", "message": f"the server is full ({max_clients} players); try later"}))
            await socket.close()
            return
        sender = asyncio.create_task(_send_frames(socket, client, idle_timeout))
        try:
            while True:
                event = await socket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                client.last_seen = time.perf_counter()
                raw = event.get("text")
                if raw is None:
                    await socket.send_text(json.dumps({"type": "error", "message": "binary messages are not accepted; send JSON text"}))
                    continue
                try:
                    kind, payload = parse_message(raw, keymap)
                except ValueError as e:
                    await socket.send_text(json.dumps({"type": "error", "message": str(e)}))
                    continue
                if kind == "keys":
                    client.actions, client.action_t = payload["actions"], payload["t"]
                elif kind == "text":
                    client.text = payload["text"]
                elif kind == "reset":
                    now = time.perf_counter()
                    if now - client.last_reset < RESET_INTERVAL_S:
                        await socket.send_text(json.dumps({"type": "error", "message": f"reset at most once every {RESET_INTERVAL_S:.0f} s"}))
                        continue
                    client.reset, client.last_reset = True, now
                    client.prompt = payload.get("prompt")
                elif kind == "ping":
                    await socket.send_text(json.dumps({"type": "pong", "t": payload["t"]}))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            worker.remove(client)

    return app


async def _send_frames(socket: WebSocket, client: Client, idle_timeout: float) -> None:
    try:
        while True:
            msg = await client.queue.get()
            if isinstance(msg, Notice):
                await socket.send_text(json.dumps({"type": "error", "message": msg.message}))
                if msg.final:
                    await socket.close(code=1011)
                    return
                continue
            if msg is EXPIRED:
                await socket.send_text(json.dumps({"type": "error", "message": f"no input for {idle_timeout:.0f} s, so the "
                                                   f"slot went back to other players; reload the page to play again"}))
                await socket.close(code=1000)
                return
            await socket.send_bytes(encode_frame(msg))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass
