"""The teacher's objective: flow matching on every frame of a clip, each predicted from the
clean frames before it (the same computation the engine does with its cache), mixed with
context-noise augmentation, diffusion forcing and condition dropout.

A clip has F + 1 frames: frame 0 only serves as the "previous frame" of frame 1; frames 1..F
are predicted. All randomness comes from one generator, so a batch's loss is a function of
(weights, clip, generator state): the DDP test relies on it.

Knows the model's inputs and the flow math; knows nothing about loops, optimisers or devices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from liveworld.flow import interpolate, logit_normal_t, velocity_target
from liveworld.model.omni import FrameInputs, OmniWorldModel
from liveworld.train.config import TrainConfig


def _uniform(shape, gen) -> torch.Tensor:
    return torch.rand(shape, generator=gen)


def context_times(B: int, Fr: int, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Flow time of each clean-stream frame [B, Fr]: 0, small augmentation noise, or (diffusion
    forcing) anything, chosen per clip."""
    mode = _uniform((B, 1), gen)
    aug = _uniform((B, Fr), gen) * cfg.ctx_noise_max
    df = _uniform((B, Fr), gen)
    t = torch.zeros(B, Fr)
    t = torch.where(mode < cfg.p_ctx_noise, aug, t)
    t = torch.where(mode > 1 - cfg.p_diffusion_forcing, df, t)
    return t


def teacher_loss(model: OmniWorldModel | torch.nn.Module, clip: dict[str, torch.Tensor], cfg: TrainConfig,
                 gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """clip: video [B, F+1, C, h, w], action [B, F+1, A], text [B, T], text_valid [B, T],
    audio [B, F+1, Na, Ca] (optional). Draws all noise from `gen` on the CPU, then moves it."""
    video = clip["video"]
    device, dtype = video.device, video.dtype
    B, F1 = video.shape[:2]
    Fr = F1 - 1
    has_audio = "audio" in clip  # the loop leaves audio out for a model without audio tokens

    def to(x):
        return x.to(device=device, dtype=dtype)

    t_ctx = context_times(B, F1, cfg, gen)
    t = logit_normal_t((B, Fr), cfg.t_mean, cfg.t_std, generator=gen)
    eps_ctx = torch.randn(video.shape, generator=gen)
    eps = torch.randn((B, Fr) + video.shape[2:], generator=gen)
    drop_action = (_uniform((B, 1), gen) < cfg.p_drop_action).expand(B, Fr)
    drop_text = _uniform((B, 1), gen) < cfg.p_drop_text
    if has_audio:
        audio = clip["audio"]
        eps_actx = torch.randn(audio.shape, generator=gen)
        eps_a = torch.randn((B, Fr) + audio.shape[2:], generator=gen)

    ctx = interpolate(video, to(eps_ctx), to(t_ctx)[..., None, None, None])  # [B, F+1, C, h, w]
    target = video[:, 1:]
    noisy = interpolate(target, to(eps), to(t)[..., None, None, None])
    clean = FrameInputs(video=ctx[:, 1:], video_prev=ctx[:, :-1], action=clip["action"][:, 1:],
                        t=to(t_ctx[:, 1:]), d=torch.zeros(B, Fr, device=device, dtype=dtype),
                        action_drop=drop_action.to(device))
    noisy_in = FrameInputs(video=noisy, video_prev=ctx[:, :-1], action=clip["action"][:, 1:],
                           t=to(t), d=torch.zeros(B, Fr, device=device, dtype=dtype),
                           action_drop=drop_action.to(device))
    if has_audio:
        actx = interpolate(audio, to(eps_actx), to(t_ctx)[..., None, None])
        clean.audio, clean.audio_prev = actx[:, 1:], actx[:, :-1]
        noisy_in.audio = interpolate(audio[:, 1:], to(eps_a), to(t)[..., None, None])
        noisy_in.audio_prev = actx[:, :-1]
    text_valid = clip["text_valid"] & ~drop_text.to(device)
    v_video, v_audio = model(clip["text"], clean, noisy_in, text_valid=text_valid)
    loss_video = F.mse_loss(v_video.float(), velocity_target(target, to(eps)).float())
    loss = loss_video
    stats = {"loss_video": loss_video.item()}
    if has_audio:
        loss_audio = F.mse_loss(v_audio.float(), velocity_target(audio[:, 1:], to(eps_a)).float())
        loss = loss + cfg.audio_loss_weight * loss_audio
        stats["loss_audio"] = loss_audio.item()
    stats["loss"] = loss.item()
    return loss, stats
