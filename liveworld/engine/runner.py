"""The streaming engine: a runner that owns the model, the tokenizers, the device, the dtype and
the CPU threads, and steps sessions, one frame per call.

    engine = WorldEngine.load("path/to/world")        # or the bundled world
    session = engine.new_session(seed=0)
    frame, audio = engine.step(session, ["MOVE_FORWARD"])   # uint8 [H, W, 3], int16 [S, C]

A step costs `steps` passes against the cache (the flow solver of liveworld/flow, the same
`sample` that evaluation and training rollouts call, fed the same t, d and guidance w), then the
decoders: O(1) in the number of frames generated. Writing a generated frame into the cache
(its pass at t = 0) rides along with the first solver pass of the next frame, in one pass of
two frames (model/cache.py masks what each may see), so it costs no pass of its own. Guidance is an input of a distilled model
(one pass per step, whatever w is). Sessions are plain data (engine/session.py); the engine keeps no per-stream
state of its own, so one engine can serve many sessions.

Knows the model, the cache and the tokenizers; knows nothing about servers or browsers.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from liveworld.common import LiveworldError, default_device, setup_cpu_threads
from liveworld.model.cache import KVCache
from liveworld.engine.session import Session
from liveworld.flow import nfe, sample
from liveworld.model.omni import FrameInputs
from liveworld.model.streaming import UnitWrite
from liveworld.model.memory import MemoryBank, summarize
from liveworld.model.sampling import draw_noise, min_step, pack, stack_frames, unpack
from liveworld.tokenizers.action import compose
from liveworld.world import load_world_model, load_world_tokenizers, read_openings, sampling_steps, select_world


FIELDS = [f.name for f in dataclasses.fields(FrameInputs)]


class WorldEngine:
    def __init__(self, model, tokenizers, meta: dict, starts: dict[str, torch.Tensor], device: torch.device,
                 steps: int = 1, solver: str = "euler", guidance: float = 1.0):
        if steps < 1:
            raise LiveworldError(f"steps must be >= 1, got {steps}")
        if solver not in ("euler", "heun"):
            raise LiveworldError(f"unknown solver {solver!r}; choose euler or heun")
        self.model, self.tok, self.meta, self.starts = model, tokenizers, meta, starts
        self.device, self.steps, self.solver = device, steps, solver
        self.window = model.cfg.frames - 1  # cached frames the model was trained to see
        self.guidance = guidance
        self.grid = tokenizers.grid
        self.layout = model.layout(0, self.grid, 0, 1)
        self.action_space = tokenizers.action_space
        self.nfe = 0  # network evaluations, for accounting
        self.memory_passes = 0  # units whose keys were computed by a pass of their own (m tokens each)
        self.memory_units_fused = 0  # units whose keys rode in a fused pass
        self.memory = model.cfg.memory_units > 0  # False: the window only (what memory adds is measured so)
        # False: a separate cache-write pass after each frame (the same frames, one more pass). A
        # model with a window of 0 frames caches no frame: nothing to write, nothing to fuse.
        self.fuse = self.window > 0
        self.stack = model.cfg.stack  # latents a frame is stacked on (Session.last_video holds them)

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | None = None, steps: int | None = None,
             solver: str = "euler", threads: int | None = None, compile: bool = False,
             guidance: float = 1.0, world: str | None = None) -> "WorldEngine":
        """`world`: which world of a checkpoint of several (default: its first). `steps`: flow
        steps a frame (default: the world's, world.sampling_steps)."""
        if checkpoint is None:
            from liveworld.bundled import bundled_checkpoint

            checkpoint = bundled_checkpoint()
        dev = torch.device(device) if device else default_device()
        if dev.type == "cpu":
            # One frame at a time is a chain of small ops: one thread beat two here (23.2 against
            # 18.4 FPS, docs/RESULTS.md), and the other core serves, decodes and encodes.
            setup_cpu_threads(1 if threads is None else threads)
        model, meta = load_world_model(checkpoint, dev)
        if compile and dev.type == "cuda":
            model.forward_cached = torch.compile(model.forward_cached, dynamic=True)
        return cls.for_world(model, meta, world, dev, steps, solver, guidance)

    @classmethod
    def for_world(cls, model, meta: dict, world: str | None, dev: torch.device, steps: int | None = None, solver: str = "euler",
                  guidance: float = 1.0) -> "WorldEngine":
        """An engine on one world of a loaded model: engines of one checkpoint's worlds share the model."""
        meta = select_world(meta, world)
        tok = load_world_tokenizers(meta)
        if dev.type == "cpu":  # the decoder's small convolutions take mkldnn's fast path (5.9 -> 4.8 ms a frame)
            tok.video.to(memory_format=torch.channels_last)
        starts = read_openings(Path(meta["path"]), meta["world"]["world"] if "worlds" in meta else None)
        return cls(model, tok, meta, starts, dev, sampling_steps(meta, steps), solver, guidance=guidance)

    @property
    def nfe_per_frame(self) -> int:
        """Network evaluations of a frame per frame: the solver's, plus the cache write."""
        return nfe(self.steps, self.solver) + (1 if self.window else 0)

    @property
    def passes_per_frame(self) -> int:
        """Forward passes per frame: the cache write shares the first solver pass (if fused)."""
        return nfe(self.steps, self.solver) + (0 if self.fuse or not self.window else 1)

    def guidance_vector(self, w: float | None = None) -> torch.Tensor | None:
        """The model's guidance input [1, G] (None: unguided, the plain conditional model)."""
        w = self.guidance if w is None else w
        if w == 1.0:
            return None
        return torch.full((1, self.model.cfg.guidance_dims), float(w), device=self.device)

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
        if self.action_space.kind == "discrete" and len(names) != 1:  # none held, or parts of one joystick move
            names = compose(names, self.action_space.names)
        unknown = [n for n in names if n not in self.action_space.names]
        if unknown:
            raise LiveworldError(f"unknown action(s) {unknown}; this world's actions are {self.action_space.names}")
        row = enc.from_names(names)
        return enc.encode(np.asarray(row)[None])[0].float()

    @torch.no_grad()
    def set_text(self, session: Session, text: str | None) -> None:
        T = self.model.cfg.text_len
        ids = self.tok.text.encode(text)[:T] if text else []
        # Only the valid tokens: text attends to itself alone, so dropping the padding changes
        # nothing and the frames need no attention mask.
        session.text = text or ""
        if ids:
            t = torch.tensor([ids], dtype=torch.long, device=self.device)
            kvs = self.model.text_kv(t, guidance=self.guidance_vector())
        else:  # no text: zero-length keys, as training's dropped text (fully masked)
            cfg = self.model.cfg
            empty = torch.zeros(1, cfg.heads, 0, cfg.head_dim, device=self.device)
            kvs = [(empty, empty)] * cfg.depth
        session.cache.set_text(kvs)

    # -- sessions ------------------------------------------------------------------------------
    @torch.no_grad()
    def new_session(self, seed: int = 0, text: str | None = None, start: int | None = None,
                    prompt: str | None = None) -> Session:
        """A stream that opens on real frames (start context `start`, by default chosen by seed),
        or, given a `prompt`, on nothing but that text: no context, a blank previous frame, as
        training's text-start clips (train/objective.py); the first step makes the first frame."""
        cfg = self.model.cfg
        dtype = next(self.model.parameters()).dtype
        unit_tokens = (self.grid[0] // cfg.memory_patch) * (self.grid[1] // cfg.memory_patch)
        cache = KVCache(self.window, self.layout.tokens_per_frame, cfg.text_len, cfg.rope_split,
                        memory_units=cfg.memory_units if self.memory else 0, unit_tokens=unit_tokens)
        cache.allocate(cfg.depth, cfg.heads, cfg.head_dim, self.device, dtype)
        gen = torch.Generator().manual_seed(seed)
        k = (seed if start is None else start) % self.starts["video"].shape[0]
        s = Session(cache=cache, generator=gen, start=k)
        if cache.memory_units:
            s.memory = MemoryBank(1, cfg.memory_units, unit_tokens, cfg.video_channels * cfg.memory_patch ** 2,
                                  cfg.memory_rule, cfg.memory_stride, device=self.device, dtype=dtype)
        if self.tok.audio is not None:
            s.audio_stream = self.tok.audio_stream()
        if prompt is not None:
            self.set_text(s, prompt)
            C, (h, w) = cfg.video_channels, self.grid
            s.last_video = torch.zeros(1, self.stack * C, h, w, device=self.device, dtype=dtype)
            s.last_audio = (torch.zeros(1, cfg.audio_tokens, cfg.audio_channels, device=self.device, dtype=dtype)
                            if cfg.audio_tokens and "audio" in self.starts else None)
            s.opening = np.zeros((self.frame_size[1], self.frame_size[0], 3), np.uint8)
            return s
        if text is None:
            ids, valid = self.starts["text_ids"][k], self.starts["text_valid"][k]
            text = self.tok.text.decode(ids[valid].tolist())
        self.set_text(s, text)
        video = self.starts["video"][k].to(self.device)
        action = self.starts["action"][k].to(self.device)
        audio = self.starts["audio"][k].to(self.device) if "audio" in self.starts and cfg.audio_tokens else None
        K = self.stack
        if video.shape[0] < K:
            raise LiveworldError(f"the checkpoint's opening frames hold {video.shape[0]} frames, the model stacks {K}; "
                                 "export it again from its run (train writes 16)")
        n = min(self.window + K, video.shape[0])
        s.last_video, s.last_audio = stack_frames(video[None, :K]), (audio[K - 1:K] if audio is not None else None)
        for f in range(K, n):  # write the opening frames into the cache, as the stream would have
            self._write(s, video[f:f + 1], action[f], audio[f:f + 1] if audio is not None else None)
        s.pending = None
        s.opening = self.tok.decode_video(video[n - 1:n])[0]
        return s

    def _segment(self, video, prev, action, audio, audio_prev, t: float, d: float) -> FrameInputs:
        """One frame's inputs: video and its previous frame [1, C, h, w], action [A], audio and
        its previous frame [1, Na, Ca] or None."""
        dev, dt = self.device, video.dtype
        seg = FrameInputs(video=video[:, None], video_prev=prev[:, None], action=action.reshape(1, 1, -1),
                          t=torch.full((1, 1), t, device=dev, dtype=dt), d=torch.full((1, 1), d, device=dev, dtype=dt))
        if audio is not None and self.model.cfg.audio_tokens:
            seg.audio, seg.audio_prev = audio[:, None], audio_prev[:, None]
        return seg

    def _write(self, s: Session, video, action, audio) -> None:
        """A cache-only pass: the finished frame at t = 0, d = 0, as training's clean stream (the
        opening frames, and every frame when `fuse` is off; else a generated frame is written by
        the fused pass of the next step)."""
        if self.window:
            self._admit_leaving_frame(s)
            seg = self._segment(video, s.last_video, action, audio, s.last_audio, 0.0, 0.0)
            views, mask = s.cache.write_views()
            self.model.forward_cached(seg, views, s.cache.written, guidance=self.guidance_vector(), want_heads=False, mask=mask)
            self.nfe += 1
            self._committed(s, video)
        s.last_video, s.last_audio = self._pushed(s.last_video, video), audio

    def _pushed(self, stacked: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """The stack [1, K*C, h, w] after frame `video` [1, C, h, w]: the oldest leaves, it joins."""
        return torch.cat([stacked[:, video.shape[1]:], video], 1)

    def _committed(self, s: Session, video: torch.Tensor) -> None:
        s.cache.commit()
        if s.memory is not None:
            s.window.append((s.cache.written - 1, video))
            del s.window[:-self.window]

    def _admit_leaving_frame(self, s: Session, defer: bool = False) -> UnitWrite | None:
        """Before a frame joins a full window, the window's oldest frame leaves it: its unit is
        offered to the bank and, if kept, its keys and values go into the cache, computed once:
        by a pass of its own, or (defer) by the fused pass this returns the UnitWrite for. The
        frame after the new one is the first to see it, as in the reference's History."""
        if s.memory is None or len(s.window) < self.window:
            return None
        number, video = s.window[0]
        cfg = self.model.cfg
        units = summarize(video, cfg.memory_patch)
        slot = int(s.memory.add(number, units)[0])
        if slot < 0:
            return None
        if defer:
            row, means = s.cache.reserve_unit(slot)
            self.memory_units_fused += 1
            return UnitWrite(units, number, row, means)
        s.cache.write_unit(slot, self.model.memory_kv(units, number, self.grid, guidance=self.guidance_vector()))
        self.memory_passes += 1
        return None

    @torch.no_grad()
    def step_latent(self, s: Session, action: torch.Tensor, text: str | None = None):
        """Generates the next frame's latents (video [1, C, h, w], audio [1, Na, Ca] or None). The
        frame is written into the cache by the first pass of the next step (fused with it), so a
        frame costs the solver's passes and no extra one."""
        return self.step_latent_batch([s], [action], [text])[0]

    @staticmethod
    def _batch_key(s: Session) -> tuple:
        """Sessions with the same key have caches of the same shape at this step (views of one
        length, the same regions), so one pass can step them all; a session with memory units
        steps alone (its bank's layout is its own)."""
        c = s.cache
        if s.memory is not None:
            return ("alone", id(s))
        return (s.pending is not None, len(c), c.text_tokens, c.written >= c.capacity, s.last_audio is not None)

    @torch.no_grad()
    def step_latent_batch(self, sessions: Sequence[Session], actions: Sequence[torch.Tensor],
                          texts: Sequence[str | None] | None = None) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """One frame for each session, in as few passes as their caches allow: sessions whose
        caches have the same shape step together, one batched pass per solver step (the same
        numbers as stepping each alone: each keeps its own noise, positions and mask). Returns
        per session (video [1, C, h, w], audio [1, Na, Ca] or None)."""
        texts = texts if texts is not None else [None] * len(sessions)
        for s, text in zip(sessions, texts):
            if text is not None and text != s.text:
                self.set_text(s, text)
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(sessions):
            groups.setdefault(self._batch_key(s), []).append(i)
        out: list = [None] * len(sessions)
        for idx in groups.values():
            for i, res in zip(idx, self._step_group([sessions[i] for i in idx], [actions[i] for i in idx])):
                out[i] = res
        return out

    def _step_group(self, group: list[Session], actions: list[torch.Tensor]):
        cfg = self.model.cfg
        B = len(group)
        acts = [a.to(self.device) for a in actions]
        has_audio = cfg.audio_tokens > 0 and group[0].last_audio is not None
        vshape = (cfg.video_channels, *self.grid)
        ashape = (cfg.audio_tokens, cfg.audio_channels) if has_audio else None
        noise = torch.cat([draw_noise(1, vshape, ashape, s.generator) for s in group]).to(self.device)
        w = self.guidance_vector()

        def frames():  # the number of the frame each pass makes (the fused pass commits one first)
            return torch.tensor([s.cache.written for s in group]) if B > 1 else group[0].cache.written
        one_frame: list = []  # every one-frame pass of this frame shares them: the sessions' views, then their stack

        def denoise(x: torch.Tensor, t: float, d: float) -> torch.Tensor:
            v_in, a_in = unpack(x, vshape, ashape)
            segs = [self._segment(v_in[b:b + 1, 0], s.last_video, acts[b], a_in[b:b + 1, 0] if a_in is not None else None,
                                  s.last_audio, t, d) for b, s in enumerate(group)]
            if group[0].pending is not None:  # write the previous frame and take this step in one pass
                fused, views, masks = [], [], []
                # a unit entering the bank rides in the fused pass (sessions with memory step alone)
                unit = self._admit_leaving_frame(group[0], defer=True) if B == 1 else None
                for s, seg in zip(group, segs):
                    if B > 1:
                        self._admit_leaving_frame(s)
                    p = s.pending
                    done = self._segment(p["video"], p["prev"], p["action"], p["audio"], p["audio_prev"], 0.0, 0.0)
                    fused.append(_cat_frames([done, seg], 1))
                    kv, mask = s.cache.fused_views()
                    views.append(kv)
                    masks.append(mask)
                read = group[0].cache.memory_read(self.model.read_top_k, fused=True)  # only a lone session has memory
                kv = _stack_views(views)
                mask = masks[0] if B == 1 else torch.stack(masks)[:, None]
                v, a = self.model.forward_cached(_cat_frames(fused, 0), kv, frames(), guidance=w, mask=mask, read=read,
                                                 unit=unit)
                _scatter_rows(kv, views, 2 * self.layout.tokens_per_frame)
                self.nfe += 2 * B
                for s in group:
                    self._committed(s, s.pending["video"])
                    s.pending = None
            else:
                if not one_frame:  # a batch's stacked copy carries each pass's rows to the next
                    views = [s.cache.frame_views() for s in group]
                    one_frame.extend([views, _stack_views(views)])
                views, kv = one_frame
                v, a = self.model.forward_cached(_cat_frames(segs, 0), kv, frames(), guidance=w,
                                                 read=group[0].cache.memory_read(self.model.read_top_k, fused=False))
                _scatter_rows(kv, views, self.layout.tokens_per_frame)
                self.nfe += B
            return pack(v, a if has_audio else None)

        x = sample(denoise, noise, self.steps, self.solver, min_step=min_step(self.model))
        video, audio = unpack(x, vshape, ashape)
        results = []
        for b, s in enumerate(group):
            vb, ab = video[b:b + 1, 0], (audio[b:b + 1, 0] if audio is not None else None)
            if self.fuse:
                s.pending = {"video": vb, "prev": s.last_video, "action": acts[b], "audio": ab, "audio_prev": s.last_audio}
                s.last_video, s.last_audio = self._pushed(s.last_video, vb), ab
            else:
                self._write(s, vb, acts[b], ab)
            s.frame_index += 1
            results.append((vb, ab))
        return results

    @torch.no_grad()
    def step(self, s: Session, action=None, text: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """One frame: uint8 [H, W, 3] and its sound int16 [S, C] (None for a silent world)."""
        return self.step_batch([s], [action], [text])[0]

    @torch.no_grad()
    def step_batch(self, sessions: Sequence[Session], actions: Sequence | None = None,
                   texts: Sequence[str | None] | None = None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """One frame for each session (batched where their caches allow, `step_latent_batch`),
        decoded together: per session uint8 [H, W, 3] and int16 [S, C] or None."""
        t0 = time.perf_counter()
        actions = actions if actions is not None else [None] * len(sessions)
        lat = self.step_latent_batch(sessions, [self.action_vector(a) for a in actions], texts)
        frames = self.tok.decode_video(torch.cat([v for v, _ in lat]))
        sounds: list = [None] * len(sessions)
        with_audio = [i for i, (_, a) in enumerate(lat) if a is not None]
        if with_audio and self.tok.audio is not None:
            pcm = self.tok.decode_audio(torch.cat([lat[i][1] for i in with_audio]), [sessions[i].audio_stream for i in with_audio])
            for i, chunk in zip(with_audio, np.split(pcm, len(with_audio))):
                sounds[i] = chunk
        ms = (time.perf_counter() - t0) * 1000
        for s in sessions:
            s.last_step_ms = ms
        return [(frames[i], sounds[i]) for i in range(len(sessions))]

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.tok.frame_size

    @property
    def fps(self) -> float:
        return float(self.meta["world"].get("fps", 15.0))

    @property
    def sample_rate_hz(self) -> int | None:
        return self.meta["world"].get("sample_rate_hz")

    @property
    def world(self) -> str:
        return self.meta["world"]["world"]

    @property
    def description(self) -> str:
        """The world's description: the prompt that starts it from text."""
        return self.meta["world"].get("description", "")


def _cat_frames(segs: list[FrameInputs], dim: int) -> FrameInputs:
    """Segments joined along frames (dim 1: a fused pass) or streams (dim 0: a batch)."""
    if len(segs) == 1:
        return segs[0]
    return FrameInputs(**{f: (torch.cat([getattr(g, f) for g in segs], dim) if getattr(segs[0], f) is not None else None)
                          for f in FIELDS})


def _stack_views(views: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer (keys, values) of B sessions' caches [B, H, Lk, Dh]: one session's own views
    (the pass writes its rows in place), or copies of several, stacked."""
    if len(views) == 1:
        return views[0]
    return [(torch.cat([v[i][0] for v in views]), torch.cat([v[i][1] for v in views])) for i in range(len(views[0]))]


def _scatter_rows(stacked, views, rows: int) -> None:
    """The rows a batched pass wrote (the last `rows` of each layer's view) back into each
    session's own cache."""
    if len(views) == 1:
        return
    for i, (k, v) in enumerate(stacked):
        for b, view in enumerate(views):
            view[i][0][:, :, -rows:] = k[b:b + 1, :, -rows:]
            view[i][1][:, :, -rows:] = v[b:b + 1, :, -rows:]
