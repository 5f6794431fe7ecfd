"""Sampling the next frame from the world model, with the whole context recomputed at each
solver step. It is the reference the cached streaming engine must match, and what evaluation
uses: simple, exact and batched.

Shape legend: B batch, W context frames, C video latent channels on an h x w grid, Na audio
tokens of Ca channels, A action width, T text tokens.

Knows the model's inputs and the flow solvers; knows nothing about pixels or sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from liveworld.flow import sample
from liveworld.model.omni import FrameInputs, OmniWorldModel


@dataclass
class History:
    """The last W + 1 frames' tokens: frame 0 only serves as the 'previous frame' of frame 1.

    video [B, W+1, C, h, w], action [B, W+1, A], audio [B, W+1, Na, Ca] or None.
    """

    video: torch.Tensor
    action: torch.Tensor
    audio: torch.Tensor | None = None

    @classmethod
    def start(cls, video: torch.Tensor, action: torch.Tensor, audio: torch.Tensor | None = None) -> "History":
        """From one first frame (video [B, C, h, w]): it is its own previous frame."""
        v = video[:, None].expand(-1, 2, -1, -1, -1).clone()
        a = action[:, None].expand(-1, 2, -1).clone()
        au = audio[:, None].expand(-1, 2, -1, -1).clone() if audio is not None else None
        return cls(v, a, au)

    def push(self, video: torch.Tensor, action: torch.Tensor, audio: torch.Tensor | None, window: int) -> "History":
        """Appends a frame and keeps the last window + 1."""
        v = torch.cat([self.video, video[:, None]], 1)[:, -(window + 1):]
        a = torch.cat([self.action, action[:, None]], 1)[:, -(window + 1):]
        au = torch.cat([self.audio, audio[:, None]], 1)[:, -(window + 1):] if self.audio is not None and audio is not None else None
        return History(v, a, au)


@torch.no_grad()
def predict_next(model: OmniWorldModel, hist: History, action: torch.Tensor, text: torch.Tensor,
                 text_valid: torch.Tensor, steps: int = 1, solver: str = "euler",
                 generator: torch.Generator | None = None, guidance: torch.Tensor | None = None,
                 action_drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The next frame's (video [B, C, h, w], audio [B, Na, Ca] or None) given the history and the
    action that leads to it (action [B, A])."""
    cfg = model.cfg
    B, W1, C, h, w = hist.video.shape
    W = W1 - 1
    dev, dt = hist.video.device, hist.video.dtype
    zeros = torch.zeros(B, W, device=dev, dtype=dt)
    drop_ctx = None if action_drop is None else action_drop[:, None].expand(B, W)
    clean = FrameInputs(video=hist.video[:, 1:], video_prev=hist.video[:, :-1], action=hist.action[:, 1:],
                        t=zeros, d=zeros, action_drop=drop_ctx)
    has_audio = cfg.audio_tokens > 0 and hist.audio is not None
    if has_audio:
        clean.audio, clean.audio_prev = hist.audio[:, 1:], hist.audio[:, :-1]
    noise_v = torch.randn((B, 1, C, h, w), generator=generator).to(dev, dt)
    noise_a = torch.randn((B, 1, cfg.audio_tokens, cfg.audio_channels), generator=generator).to(dev, dt) if has_audio else None
    nv = C * h * w

    def pack(v: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([v.flatten(1), a.flatten(1)], 1) if a is not None else v.flatten(1)

    def velocity(x: torch.Tensor, t: float, d: float) -> torch.Tensor:
        v_in = x[:, :nv].view(B, 1, C, h, w)
        noisy = FrameInputs(video=v_in, video_prev=hist.video[:, -1:], action=action[:, None],
                            t=torch.full((B, 1), t, device=dev, dtype=dt), d=torch.full((B, 1), d, device=dev, dtype=dt),
                            action_drop=None if action_drop is None else action_drop[:, None])
        if has_audio:
            noisy.audio = x[:, nv:].view(B, 1, cfg.audio_tokens, cfg.audio_channels)
            noisy.audio_prev = hist.audio[:, -1:]
        vv, va = model(text, clean, noisy, guidance=guidance, text_valid=text_valid, noisy_offset=W)
        return pack(vv, va if has_audio else None)

    x = sample(velocity, pack(noise_v, noise_a), steps, solver)
    video = x[:, :nv].view(B, C, h, w)
    audio = x[:, nv:].view(B, cfg.audio_tokens, cfg.audio_channels) if has_audio else None
    return video, audio
