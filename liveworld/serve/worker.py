"""The model thread and its scheduler: the only place the engine runs while serving.

The web server's event loop never calls the model: it posts the latest keys and text of each
client here and receives frames through an asyncio queue (put from this thread with
`call_soon_threadsafe`).

Scheduling. Each client has a due time on a frame clock. Every round, all clients that are due
step together in one `engine.step_batch` call (one batched pass per solver step where their
caches allow). The clock the server promises is the world's frame rate (or `fps`), slowed to
what the machine achieves when the rounds take longer: promised period = max(world period,
1.15 x the recent round time). A frame counts as late only if it arrives after the deadline
that promise sets (its due time + one promised period). A client that falls behind skips
ahead instead of queueing the frames it missed: a slow machine shows a lower frame rate,
never a growing lag. A client that sends nothing for `idle_timeout` seconds loses its slot.

Knows the engine and threads; knows nothing about HTTP or WebSockets.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time
from collections import deque
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
    prompt: str | None = None  # the next session starts from this text alone (the page's prompt box)
    session: Session | None = None
    next_due: float = 0.0
    frames: int = 0
    missed: int = 0
    resets: int = 0
    connected: float = field(default_factory=time.perf_counter)
    last_seen: float = field(default_factory=time.perf_counter)  # the client's latest message
    last_reset: float = 0.0
    expired: bool = False  # idle too long: the slot went back to the pool
    failures: int = 0  # rounds of this client that raised (its session is opened afresh each time)


@dataclass
class FrameMessage:
    frame: np.ndarray
    audio: np.ndarray | None
    index: int
    step_ms: float
    ack_t: float | None
    missed: int
    text: str
    promised_fps: float = 0.0


EXPIRED = "expired"  # put in a client's queue instead of a frame when its slot is taken back
MAX_FAILURES = 3  # a client whose rounds keep raising is dropped (the others keep playing)
# A new session costs several frames of model time (its opening window is written into the cache).
# A connection gets one only after OPEN_GRACE_S (one that drops at once costs nothing), and the
# server opens at most OPENS_PER_S a second, so a flood of connections cannot starve the players.
OPEN_GRACE_S = 0.2
OPENS_PER_S = 2.0
log = logging.getLogger("liveworld.serve")


@dataclass
class Notice:
    """A text message for one client instead of a frame (final: then the connection closes)."""

    message: str
    final: bool = False


class ModelWorker(threading.Thread):
    def __init__(self, engine: WorldEngine, fps: float | None = None, max_clients: int = 4, seed: int = 0,
                 idle_timeout: float = 120.0, prompt: str | None = None):
        super().__init__(daemon=True, name="liveworld-model")
        self.prompt = prompt  # a new player's first session starts from this text alone
        self.engine = engine
        self.period = 1.0 / (fps or engine.fps)
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self.seed = seed  # every player starts from the same opening; each reset moves to the next
        self.clients: dict[int, Client] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self._next_id = 0
        self.round_s = 0.0  # the median of the recent rounds' times: what the promise is made from
        self.recent: deque[float] = deque(maxlen=16)  # one slow round (a pause, a warm-up) moves a median little
        self.next_open = 0.0  # the earliest time the next session may be opened
        self.batch_sizes: list[int] = []  # clients stepped per round, the latest 1,000

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

    @property
    def promised_period(self) -> float:
        return max(self.period, 1.15 * self.round_s)

    def _deliver(self, c: Client, msg) -> None:
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
            for c in clients:
                if now - c.last_seen > self.idle_timeout:
                    self._expire(c)
            clients = [c for c in clients if not c.expired]
            can_open = now >= self.next_open
            waiting = [c for c in clients if (c.session is None and now - c.connected >= OPEN_GRACE_S) or c.reset]
            opening = waiting[:1] if can_open else []  # at most one new session a turn, OPENS_PER_S a second
            due = opening + [c for c in clients if c.session is not None and not c.reset and now >= c.next_due]
            if not due:
                wake = min((c.next_due for c in clients if c.session is not None), default=now + 0.01)
                time.sleep(max(0.0, min(wake - now, 0.01)))
                continue
            t0 = time.perf_counter()
            if opening:
                self.next_open = t0 + 1.0 / OPENS_PER_S
            for c in opening:
                try:
                    self._open(c)  # its first frame is due one period later
                except Exception:
                    self._failed([c])
            stepping = [c for c in due if all(c is not o for o in opening)]
            if stepping:
                try:
                    self._round(stepping, t0)
                except Exception:
                    self._failed(stepping)

    def _failed(self, clients: list[Client]) -> None:
        """A round (or an opening) raised: the model thread lives on. The clients in it start
        over from a fresh session; one that keeps failing is told why and dropped."""
        log.exception("a round of %d player(s) failed; they start over", len(clients))
        for c in clients:
            c.failures += 1
            c.session, c.reset = None, False
            if c.failures >= MAX_FAILURES:
                c.expired = True
                self.remove(c)
                self._deliver(c, Notice(f"the server failed to make your frames {MAX_FAILURES} times; see its log", final=True))
            else:
                self._deliver(c, Notice("the server failed to make a frame; your world starts over"))

    def _expire(self, c: Client) -> None:
        c.expired = True
        self.remove(c)
        c.session = None  # its cache goes with it
        self._deliver(c, EXPIRED)

    def _open(self, c: Client) -> None:
        if c.reset:
            c.resets += 1
        c.reset = False
        prompt, c.prompt = c.prompt, None
        if prompt is None and c.resets == 0:
            prompt = self.prompt
        if prompt is not None:
            c.text = prompt
        c.session = self.engine.new_session(seed=self.seed + c.resets, text=c.text, prompt=prompt)
        c.next_due = time.perf_counter() + self.promised_period
        self._deliver(c, FrameMessage(c.session.opening, None, 0, 0.0, None, c.missed, c.session.text, 1 / self.promised_period))

    def _round(self, clients: list[Client], t0: float) -> None:
        """One frame for every client in one step_batch call. t0: when this loop turn began (a
        session opened in it counts in the round's time, so the promise covers it)."""
        acks = [c.action_t for c in clients]
        out = self.engine.step_batch([c.session for c in clients], [list(c.actions) for c in clients], [c.text for c in clients])
        done = time.perf_counter()
        took = done - t0
        self.recent.append(took)
        self.round_s = statistics.median(self.recent)
        self.batch_sizes = (self.batch_sizes + [len(clients)])[-1000:]
        promised = self.promised_period
        for c, ack, (frame, audio) in zip(clients, acks, out):
            c.frames += 1
            if done > c.next_due + promised:  # later than the promise: counted
                c.missed += 1
            c.next_due += promised
            if c.next_due < done:  # behind: skip ahead rather than generate the frames it missed
                c.next_due = done
            self._deliver(c, FrameMessage(frame, audio, c.session.frame_index, took * 1000, ack, c.missed,
                                          c.session.text, 1 / promised))

    def stop(self) -> None:
        self.stop_event.set()
