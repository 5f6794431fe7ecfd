"""The streaming engine: a runner that owns the model, the tokenizers, the device, the dtype and
the CPU threads, and steps sessions, one frame per call.

    engine = WorldEngine.load("path/to/world")        # or the bundled world
    session = engine.new_session(seed=0)
    frame, audio = engine.step(session, ["MOVE_FORWARD"])   # uint8 [H, W, 3], int16 [S, C]

A step costs `steps` passes of one frame's tokens against the cache (the flow solver) plus one
pass that writes the generated frame into the cache, then the decoders: O(1) in the number of
frames generated. Sessions are plain data (engine/session.py); the engine keeps no per-stream
state of its own, so one engine can serve many sessions.

Knows the model, the cache and the tokenizers; knows nothing about servers or browsers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file

from liveworld.common import LiveworldError, default_device, setup_cpu_threads
from liveworld.engine.cache import KVCache
from liveworld.engine.session import Session
from liveworld.flow import time_grid
from liveworld.model.omni import FrameInputs
from liveworld.train.loop import load_world_model, load_world_tokenizers, resolve_checkpoint


def load_start_contexts(ckpt: Path) -> dict[str, torch.Tensor]:
    """Real opening frames to start streams from: `start.safetensors` in the checkpoint (written by
    `liveworld export`), else the first frames of the run's cached training episodes."""
    f = ckpt / "start.safetensors"
    if f.exists():
        return load_file(str(f))
    for cache in (ckpt.parent / "cache" / "latents-train", ckpt.parent / "cache" / "latents-train.safetensors"):
        if cache.exists():
            from liveworld.train.data import Latents

            return start_contexts_from_latents(Latents.load(cache), count=8, frames=16)
    raise LiveworldError(f"{ckpt} has no start.safetensors (opening frames); export the run with `liveworld export RUN --out DIR`")


def start_contexts_from_latents(lat, count: int, frames: int) -> dict[str, torch.Tensor]:
    """The first `frames` frames of up to `count` episodes: video [K, F, C, h, w], action, audio, text."""
    starts = [a for a, b in zip(lat.starts[:-1].tolist(), lat.starts[1:].tolist()) if b - a >= frames][:count]
    from liveworld.train.data import take

    rows = torch.tensor(starts)[:, None] + torch.arange(frames)[None]
    out = {"video": take(lat.video, rows).contiguous(), "action": take(lat.action, rows).contiguous(),
           "text_ids": lat.text_ids[lat.text_index[rows[:, 0]]].contiguous(),
           "text_valid": lat.text_valid[lat.text_index[rows[:, 0]]].contiguous()}
    if lat.audio is not None:
        out["audio"] = take(lat.audio, rows).contiguous()
    return out


class WorldEngine:
    def __init__(self, model, tokenizers, meta: dict, starts: dict[str, torch.Tensor], device: torch.device,
                 steps: int = 1, solver: str = "euler", sink_frames: int = 1):
        self.model, self.tok, self.meta, self.starts = model, tokenizers, meta, starts
        self.device, self.steps, self.solver = device, steps, solver
        self.window = model.cfg.frames - 1  # cached frames the model was trained to see
        self.sink_frames = min(sink_frames, self.window - 1)
        self.grid = tokenizers.grid
        self.layout = model.layout(0, self.grid, 0, 1)
        self.action_space = tokenizers.action_space
        self.nfe = 0  # network evaluations, for accounting

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | None = None, steps: int = 1,
             solver: str = "euler", threads: int | None = None, compile: bool = False) -> "WorldEngine":
        if checkpoint is None:
            from liveworld.bundled import bundled_checkpoint

            checkpoint = bundled_checkpoint()
        dev = torch.device(device) if device else default_device()
        if dev.type == "cpu":
            setup_cpu_threads(threads)
        model, meta = load_world_model(checkpoint, dev)
        tok = load_world_tokenizers(meta)
        if compile and dev.type == "cuda":
            model.forward_cached = torch.compile(model.forward_cached, dynamic=True)
        starts = load_start_contexts(resolve_checkpoint(checkpoint))
        return cls(model, tok, meta, starts, dev, steps, solver)

    # -- actions and text ----------------------------------------------------------------------
    def action_vector(self, action: Sequence[str] | np.ndarray | torch.Tensor | None) -> torch.Tensor:
        """Button names (or a ready vector) -> the model's action vector [A]."""
        enc = self.tok.actions
        if action is None:
            return torch.zeros(enc.width)
        if isinstance(action, torch.Tensor):
            return action.float()
        if isinstance(action, np.ndarray):
            return torch.as_tensor(action).float()
        names = list(action)
        if self.action_space.kind == "discrete" and len(names) == 0:
            names = [self.action_space.names[0]]
        unknown = [n for n in names if n not in self.action_space.names]
        if unknown:
            raise LiveworldError(f"unknown action(s) {unknown}; this world's actions are {self.action_space.names}")
        row = enc.from_names(names)
        return enc.encode(np.asarray(row)[None])[0].float()

    @torch.no_grad()
    def set_text(self, session: Session, text: str | None) -> None:
        T = self.model.cfg.text_len
        ids = self.tok.text.encode(text)[:T] if text else []
        t = torch.zeros(1, T, dtype=torch.long)
        t[0, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        valid = torch.zeros(1, T, dtype=torch.bool)
        valid[0, : len(ids)] = True
        session.text = text or ""
        session.cache.set_text(self.model.text_kv(t.to(self.device), valid.to(self.device)), valid.to(self.device))

    # -- sessions ------------------------------------------------------------------------------
    @torch.no_grad()
    def new_session(self, seed: int = 0, text: str | None = None, start: int | None = None) -> Session:
        """A stream that opens on real frames (start context `start`, by default chosen by seed)."""
        cfg = self.model.cfg
        cache = KVCache(self.sink_frames, self.window - self.sink_frames, cfg.rope_split, self.layout)
        gen = torch.Generator().manual_seed(seed)
        k = (seed if start is None else start) % self.starts["video"].shape[0]
        s = Session(cache=cache, generator=gen, start=k)
        if text is None:
            ids, valid = self.starts["text_ids"][k], self.starts["text_valid"][k]
            text = self.tok.text.decode(ids[valid].tolist())
        self.set_text(s, text)
        video = self.starts["video"][k].to(self.device)
        action = self.starts["action"][k].to(self.device)
        audio = self.starts["audio"][k].to(self.device) if "audio" in self.starts and cfg.audio_tokens else None
        n = min(self.window + 1, video.shape[0])
        s.last_video, s.last_audio = video[0:1], (audio[0:1] if audio is not None else None)
        for f in range(1, n):  # write the opening frames into the cache, as the stream would have
            self._write(s, video[f:f + 1], action[f:f + 1], audio[f:f + 1] if audio is not None else None)
        s.opening = self.tok.decode_video(video[n - 1:n])[0]
        return s

    def _segment(self, s: Session, video, action, audio, t: float, d: float) -> FrameInputs:
        dev, dt = self.device, video.dtype
        seg = FrameInputs(video=video[:, None], video_prev=s.last_video[:, None], action=action[None, None] if action.ndim == 1 else action[:, None],
                          t=torch.full((1, 1), t, device=dev, dtype=dt), d=torch.full((1, 1), d, device=dev, dtype=dt))
        if audio is not None and self.model.cfg.audio_tokens:
            seg.audio, seg.audio_prev = audio[:, None], s.last_audio[:, None]
        return seg

    def _write(self, s: Session, video, action, audio) -> None:
        prefix, valid = s.cache.prefix()
        _, _, kvs = self.model.forward_cached(self._segment(s, video, action[0] if action.ndim == 2 else action, audio, 0.0, 0.0),
                                              prefix, len(s.cache), prefix_valid=valid, want_kv=True, want_heads=False)
        self.nfe += 1
        s.cache.append(kvs)
        s.last_video, s.last_audio = video, audio

    @torch.no_grad()
    def step_latent(self, s: Session, action: torch.Tensor, text: str | None = None):
        """Generates the next frame's latents (video [1, C, h, w], audio [1, Na, Ca] or None) and
        writes them into the cache."""
        if text is not None and text != s.text:
            self.set_text(s, text)
        cfg = self.model.cfg
        action = action.to(self.device)
        prefix, valid = s.cache.prefix()
        pos = len(s.cache)
        C, (h, w) = cfg.video_channels, self.grid
        x = torch.randn((1, C, h, w), generator=s.generator).to(self.device)
        has_audio = cfg.audio_tokens > 0 and s.last_audio is not None
        a = torch.randn((1, cfg.audio_tokens, cfg.audio_channels), generator=s.generator).to(self.device) if has_audio else None
        ts = time_grid(self.steps)
        for t, t_next in zip(ts[:-1], ts[1:]):
            v, va, _ = self.model.forward_cached(self._segment(s, x, action, a, t, t - t_next), prefix, pos, prefix_valid=valid)
            self.nfe += 1
            x = x + (t_next - t) * v[:, 0]
            if has_audio:
                a = a + (t_next - t) * va[:, 0]
        self._write(s, x, action, a)
        s.frame_index += 1
        return x, a

    @torch.no_grad()
    def step(self, s: Session, action=None, text: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """One frame: uint8 [H, W, 3] and its sound int16 [S, C] (None for a silent world)."""
        t0 = time.perf_counter()
        video, audio = self.step_latent(s, self.action_vector(action), text)
        frame = self.tok.decode_video(video)[0]
        sound = self.tok.decode_audio(audio) if audio is not None and self.tok.audio is not None else None
        s.last_step_ms = (time.perf_counter() - t0) * 1000
        return frame, sound

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.tok.frame_size

    @property
    def fps(self) -> float:
        return float(self.meta["world"].get("fps", 15.0))

    @property
    def sample_rate_hz(self) -> int | None:
        return self.meta["world"].get("sample_rate_hz")
