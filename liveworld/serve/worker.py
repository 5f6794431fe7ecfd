"""The model thread: the only place the engine runs while serving.

The web server's event loop never calls the model: it posts the latest keys and text of each
client here and receives frames through an asyncio queue (put from this thread with
`call_soon_threadsafe`). Each session is stepped on a frame clock (the world's frame rate,
or `fps`); a step that overruns its deadline is counted and the clock skips ahead instead of
piling up late frames, so a slow machine shows a lower frame rate, never a growing lag.

Knows the engine and threads; knows nothing about HTTP or WebSockets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from liveworld.engine.runner import WorldEngine
from liveworld.engine.session import Session


@dataclass
class Client:
    """What the server knows of one browser: its latest input and where its frames go."""

    id: int
    queue: asyncio.Queue
    loop: asyncio.AbstractEventLoop
    actions: list[str] = field(default_factory=list)
    action_t: float | None = None  # the client's timestamp of the latest key change
    text: str | None = None
    reset: bool = False
    session: Session | None = None
    next_due: float = 0.0
    frames: int = 0
    missed: int = 0
    resets: int = 0


@dataclass
class FrameMessage:
    frame: np.ndarray
    audio: np.ndarray | None
    index: int
    step_ms: float
    ack_t: float | None
    missed: int
    text: str


class ModelWorker(threading.Thread):
    def __init__(self, engine: WorldEngine, fps: float | None = None, max_clients: int = 4, seed: int = 0):
        super().__init__(daemon=True, name="liveworld-model")
        self.engine = engine
        self.period = 1.0 / (fps or engine.fps)
        self.max_clients = max_clients
        self.seed = seed  # every player starts from the same opening; each reset moves to the next
        self.clients: dict[int, Client] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self._next_id = 0

    def add(self, loop: asyncio.AbstractEventLoop) -> Client | None:
        with self.lock:
            if len(self.clients) >= self.max_clients:
                return None
            self._next_id += 1
            c = Client(self._next_id, asyncio.Queue(maxsize=2), loop)
            self.clients[c.id] = c
            return c

    def remove(self, client: Client) -> None:
        with self.lock:
            self.clients.pop(client.id, None)

    def _deliver(self, c: Client, msg: FrameMessage) -> None:
        def put():
            if c.queue.full():  # a slow browser gets the newest frame, not a backlog
                c.queue.get_nowait()
            c.queue.put_nowait(msg)

        try:
            c.loop.call_soon_threadsafe(put)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            pass

    def run(self) -> None:
        while not self.stop_event.is_set():
            with self.lock:
                clients = list(self.clients.values())
            now = time.perf_counter()
            due = [c for c in clients if c.session is None or c.reset or now >= c.next_due]
            if not due:
                wake = min((c.next_due for c in clients), default=now + 0.01)
                time.sleep(max(0.0, min(wake - now, 0.01)))
                continue
            for c in due:
                self._serve(c)

    def _serve(self, c: Client) -> None:
        eng = self.engine
        if c.session is None or c.reset:
            if c.reset:
                c.resets += 1
            c.reset = False
            c.session = eng.new_session(seed=self.seed + c.resets, text=c.text)
            c.next_due = time.perf_counter()
            self._deliver(c, FrameMessage(c.session.opening, None, 0, 0.0, None, c.missed, c.session.text))
            return
        ack = c.action_t
        t0 = time.perf_counter()
        frame, audio = eng.step(c.session, list(c.actions), c.text)
        step_ms = (time.perf_counter() - t0) * 1000
        c.frames += 1
        c.next_due += self.period
        now = time.perf_counter()
        if now > c.next_due:  # missed the deadline: skip ahead rather than queue late frames
            c.missed += 1
            c.next_due = now
        self._deliver(c, FrameMessage(frame, audio, c.session.frame_index, step_ms, ack, c.missed, c.session.text))

    def stop(self) -> None:
        self.stop_event.set()
