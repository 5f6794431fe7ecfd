"""Sampling the next frame from the world model with the whole context recomputed at each
solver step: the reference the cached streaming engine must match (tested), what evaluation
uses, and what training uses to roll the model out on its own frames. Simple, exact, batched.

Shape legend: B batch, W context frames, C video latent channels on an h x w grid, Na audio
tokens of Ca channels, A action width, T text tokens, G guidance scales.

What the model is fed here is what training fed it (tests/train/test_sampling_matches_training.py):
context frames at flow time 0 with d = 0, the new frame at the solver's t with the step size
the model was trained with (`model_denoiser`), guidance scales w as inputs.

Knows the model's inputs and the flow solvers; knows nothing about pixels, caches or sessions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from liveworld.flow import sample
from liveworld.model.memory import MemoryBank, MemoryInputs, summarize
from liveworld.model.omni import FrameInputs, OmniWorldModel


@dataclass
class History:
    """The last W + K frames' tokens: the W context frames a model with a window attends to,
    each with the K frames before it stacked as its input (OmniConfig.stack; K = 1: the previous
    frame), and the K frames the next frame is stacked on (the last K). W = 0 is a stream that
    attends to no frame: its frames see only their stack. A model with memory also keeps the bank
    of the frames that left the window (model/memory.py), updated in place by `push`.

    video [B, W+K, C, h, w], action [B, W+K, A], audio [B, W+K, Na, Ca] or None; `first` is the
    stream frame number of frame K - 1 (an int, or [B] for streams at different points), numbered
    as model/memory.py says: a new stream's opening frame is -1, its first context frame 0.
    """

    video: torch.Tensor
    action: torch.Tensor
    audio: torch.Tensor | None = None
    memory: MemoryBank | None = None
    first: int | torch.Tensor = -1
    stack: int = 1

    @classmethod
    def start(cls, video: torch.Tensor, action: torch.Tensor, audio: torch.Tensor | None = None,
              memory: MemoryBank | None = None, first: int | torch.Tensor = -1, stack: int = 1) -> "History":
        """From opening frames: video [B, C, h, w] (one frame) or [B, n, C, h, w]. With fewer than
        K frames the oldest repeats, as a stream that stood still before it began."""
        if video.dim() == 4:
            video, action = video[:, None], action[:, None]
            audio = audio[:, None] if audio is not None else None
        n = video.shape[1]
        if n < stack:
            pad = [0] * (stack - n) + list(range(n))
            video, action = video[:, pad], action[:, pad]
            audio = audio[:, pad] if audio is not None else None
        return cls(video, action, audio, memory, first, stack)

    def push(self, video: torch.Tensor, action: torch.Tensor, audio: torch.Tensor | None, window: int) -> "History":
        """Appends a frame and keeps the last window + K. A frame that leaves the window (the old
        first context frame, now only a stacked one) is offered to the memory bank."""
        keep = window + self.stack
        v = torch.cat([self.video, video[:, None]], 1)
        left = v.shape[1] > keep
        v = v[:, -keep:]
        a = torch.cat([self.action, action[:, None]], 1)[:, -keep:]
        au = torch.cat([self.audio, audio[:, None]], 1)[:, -keep:] if self.audio is not None and audio is not None else None
        first = self.first + int(left)
        if left and self.memory is not None and window > 0:
            self.memory.add(first, summarize(v[:, self.stack - 1], self.memory_patch))
        return History(v, a, au, self.memory, first, self.stack)

    @property
    def window(self) -> int:
        """W: the context frames held (the frames before them are only stacked)."""
        return self.video.shape[1] - self.stack

    def stacked(self, end: int | None = None) -> torch.Tensor:
        """The K frames before index `end` (default: the next frame) as one input [B, 1, K*C, h, w]."""
        end = self.video.shape[1] if end is None else end
        return stack_frames(self.video[:, end - self.stack:end])[:, None]

    def stacked_audio(self) -> torch.Tensor | None:
        """The newest frame's audio [B, 1, Na, Ca]: audio tokens see one previous frame."""
        return self.audio[:, -1:] if self.audio is not None else None

    @property
    def memory_patch(self) -> int:
        """p of the bank's units (C * p * p features a token)."""
        return math.isqrt(self.memory.tokens.shape[-1] // self.video.shape[2])

    def memory_inputs(self) -> MemoryInputs | None:
        """The bank as the next frame's pass reads it (frame numbers relative to the first context frame)."""
        return self.memory.inputs(self.first + 1) if self.memory is not None else None


def stack_frames(frames: torch.Tensor) -> torch.Tensor:
    """K consecutive latents [..., K, C, h, w] -> one input [..., K*C, h, w], oldest first: the
    layout of FrameInputs.video_prev for every caller (training, sampling, the engine)."""
    return frames.flatten(-4, -3)


def stacks_of(frames: torch.Tensor, stack: int) -> torch.Tensor:
    """For each frame i >= K of frames [B, n, C, h, w], the K frames before it stacked:
    [B, n - K, K*C, h, w]."""
    B, n, C, h, w = frames.shape
    if n <= stack:
        return frames.new_zeros(B, 0, stack * C, h, w)
    return torch.stack([stack_frames(frames[:, i - stack:i]) for i in range(stack, n)], 1)


def min_step(model: OmniWorldModel) -> float:
    """The smallest step size the model was trained to take as input (0: it never saw d)."""
    k = model.cfg.shortcut_steps
    return 1.0 / k if k else 0.0


def pack(video: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
    """video [B, F, C, h, w] (+ audio [B, F, Na, Ca]) -> one state [B, F, C*h*w (+ Na*Ca)]."""
    B, Fr = video.shape[:2]
    x = video.reshape(B, Fr, -1)
    return torch.cat([x, audio.reshape(B, Fr, -1)], -1) if audio is not None else x


def unpack(x: torch.Tensor, video_shape: tuple[int, ...], audio_shape: tuple[int, ...] | None):
    """The inverse of `pack`; shapes exclude the batch and frame dims."""
    B, Fr = x.shape[:2]
    nv = 1
    for s in video_shape:
        nv *= s
    video = x[..., :nv].reshape(B, Fr, *video_shape)
    audio = x[..., nv:].reshape(B, Fr, *audio_shape) if audio_shape is not None else None
    return video, audio


def context_segment(hist: History, action_drop: torch.Tensor | None = None) -> FrameInputs:
    """The clean stream of a history: its W context frames, each with its K-stack, at t = d = 0."""
    B, K = hist.video.shape[0], hist.stack
    W = hist.window
    zeros = torch.zeros(B, W, device=hist.video.device, dtype=hist.video.dtype)
    seg = FrameInputs(video=hist.video[:, K:], video_prev=stacks_of(hist.video, K), action=hist.action[:, K:], t=zeros, d=zeros,
                      action_drop=None if action_drop is None else action_drop[:, None].expand(B, W))
    if hist.audio is not None:
        seg.audio, seg.audio_prev = hist.audio[:, K:], hist.audio[:, K - 1:-1]
    return seg


@torch.no_grad()
def predict_next(model: OmniWorldModel, hist: History, action: torch.Tensor, text: torch.Tensor,
                 text_valid: torch.Tensor, steps: int = 1, solver: str = "euler",
                 generator: torch.Generator | None = None, guidance: torch.Tensor | None = None,
                 action_drop: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The next frame's (video [B, C, h, w], audio [B, Na, Ca] or None) given the history and the
    action that leads to it (action [B, A]). `noise` [B, 1, C*h*w (+ Na*Ca)] (else drawn from
    `generator`) is the solver's starting point, in `pack`'s layout."""
    cfg = model.cfg
    B, _, C, h, w = hist.video.shape
    W = hist.window
    dev, dt = hist.video.device, hist.video.dtype
    has_audio = cfg.audio_tokens > 0 and hist.audio is not None
    clean = context_segment(hist if has_audio else History(hist.video, hist.action, stack=hist.stack), action_drop)
    vshape, ashape = (C, h, w), ((cfg.audio_tokens, cfg.audio_channels) if has_audio else None)
    memory = hist.memory_inputs() if cfg.memory_units else None
    if noise is None:
        noise = draw_noise(B, vshape, ashape, generator)
    noise = noise.to(dev, dt)

    def denoise(x: torch.Tensor, t: float, d: float) -> torch.Tensor:
        v_in, a_in = unpack(x, vshape, ashape)
        noisy = FrameInputs(video=v_in, video_prev=hist.stacked(), action=action[:, None],
                            t=torch.full((B, 1), t, device=dev, dtype=dt), d=torch.full((B, 1), d, device=dev, dtype=dt),
                            action_drop=None if action_drop is None else action_drop[:, None])
        if has_audio:
            noisy.audio, noisy.audio_prev = a_in, hist.stacked_audio()
        vv, va = model(text, clean, noisy, guidance=guidance, text_valid=text_valid, noisy_offset=W, memory=memory)
        return pack(vv, va if has_audio else None)

    x = sample(denoise, noise, steps, solver, min_step=min_step(model))
    video, audio = unpack(x, vshape, ashape)
    return video[:, 0], (audio[:, 0] if audio is not None else None)


def roll_out(model: OmniWorldModel, hist: History, actions: torch.Tensor,
             next_frame: Callable[[History, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]],
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """H frames autoregressively, the one loop of eval's rollouts and training's own rollouts:
    frame h is `next_frame(history, actions[:, h], h)` (a sampler call: predict_next with its
    noise), pushed onto the history with its action as the engine pushes it. actions [B, H, A]
    -> video [B, H, C, h, w], audio [B, H, Na, Ca] or None."""
    window = model.cfg.frames - 1
    vs, aus = [], []
    for h in range(actions.shape[1]):
        v, a = next_frame(hist, actions[:, h], h)
        hist = hist.push(v, actions[:, h], a, window)
        vs.append(v)
        aus.append(a)
    return torch.stack(vs, 1), (torch.stack(aus, 1) if aus[0] is not None else None)


def draw_noise(B: int, video_shape: tuple[int, ...], audio_shape: tuple[int, ...] | None,
               generator: torch.Generator | None) -> torch.Tensor:
    """A frame's starting noise [B, 1, n] in `pack`'s layout, video first then audio, drawn on
    the CPU so that every device gets the same numbers from the same generator."""
    nv = torch.Size(video_shape).numel()
    na = torch.Size(audio_shape).numel() if audio_shape is not None else 0
    v = torch.randn((B, 1, nv), generator=generator)
    if not na:
        return v
    return torch.cat([v, torch.randn((B, 1, na), generator=generator)], -1)
