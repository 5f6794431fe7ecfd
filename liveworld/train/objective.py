"""The world model's objective: every frame of a clip denoised from the clean frames before it
(the computation the engine does with its cache), trained in the regime the engine samples in.

    flow matching      the smallest step size d_min: target = the real frame, t on the sampler's
                       grid or logit-normal
    shortcut           clips with step sizes d in {2 d_min, ..., 1/2, 1}, t on the grid of d
                       (so t = 1, the one point a 1-step sampler evaluates, always gets d = 1):
                       target = where two steps of d / 2 of the model itself land
                       (flow/shortcut.py; Frans et al. 2024; Dreamer 4's shortcut forcing)
    context            clean, noise-augmented (t <= 0.3), or per-frame t (diffusion forcing)
    memory             (a model with memory units) the bank the clip's stream holds, from the
                       data loader (train/data.py, model/memory.py): the noisy frames read it
    self-rollout       clips whose context frames the model generated itself, from the first
                       real frame with the real actions and the engine's step count, at t = 0
                       as the engine writes them; target = the real frames (Self-Forcing-style
                       rollout fine-tuning, Huang et al. 2025)
    guidance           (distillation, with a frozen teacher) clips with scales w > 1 learn the
                       teacher's classifier-free-guided estimate in one pass (flow/guidance.py)
    adversarial        (with a critic) clips whose frames are all one step from pure noise, as the
                       engine makes them, also judged by a critic of real frame latents, so the
                       one-step frame is a sharp sample rather than the blurred conditional mean
                       (train/adversarial.py)
    text start         (p_text_start) clips whose frame 0 is blank and whose text is the episode's
                       description: frame 1 is made from the text alone, the frames after it from
                       it, as a stream `play --prompt` opens (model/sampling.py, BLANK)
    dropout            actions and text are dropped 10% of the time each (so CFG exists)

The model returns clean estimates x̂_0 and the loss is their mean squared error in latent space.
A clip has F + 1 frames: frame 0 only serves as the "previous frame" of frame 1. All randomness
comes from one generator, so a batch's loss is a function of (weights, clip, generator state):
the DDP test relies on it.

Knows the model's inputs and the flow math; knows nothing about loops, optimisers or devices.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from liveworld.flow import grid_t, guided, interpolate, logit_normal_t, shortcut_levels, shortcut_target
from liveworld.model.memory import MemoryBank, MemoryInputs
from liveworld.model.omni import FrameInputs, OmniConfig, OmniWorldModel
from liveworld.model.sampling import History, pack, predict_next, roll_out, stacks_of, unpack
from liveworld.train.adversarial import Adversary
from liveworld.train.config import TrainConfig

GRID_WITHOUT_SHORTCUT = 8  # a model without step sizes still trains the 8-step grid, t = 1 included


def unwrap(model: torch.nn.Module) -> OmniWorldModel:
    """The model inside DDP and torch.compile wrappers."""
    while hasattr(model, "_orig_mod") or hasattr(model, "module"):
        model = getattr(model, "_orig_mod", None) or model.module
    return model


def _uniform(shape, gen) -> torch.Tensor:
    return torch.rand(shape, generator=gen)


def clip_frames(mcfg: OmniConfig, cfg: TrainConfig) -> int:
    """Frames in a training clip: the K stacked frames before the first predicted one, then the
    predicted frames: the window + 1 (every frame predicted from the clean ones before it), or for
    a model that attends to no frame (frames = 1), `cfg.clip_targets` frames predicted apart."""
    return mcfg.stack + (mcfg.frames if mcfg.frames > 1 else cfg.clip_targets)


def context_times(B: int, Fr: int, cfg: TrainConfig, gen: torch.Generator, per_clip: bool = False) -> torch.Tensor:
    """Flow time of each clean-stream frame [B, Fr]: 0, small augmentation noise, or (diffusion
    forcing) anything, chosen per clip. per_clip: one augmentation level for all of a clip's
    frames (a model that is told its stacked context's level, OmniConfig.context_level)."""
    mode = _uniform((B, 1), gen)
    aug = _uniform((B, 1) if per_clip else (B, Fr), gen).expand(B, Fr) * cfg.ctx_noise_max
    df = _uniform((B, Fr), gen)
    t = torch.zeros(B, Fr)
    t = torch.where(mode < cfg.p_ctx_noise, aug, t)
    t = torch.where(mode > 1 - cfg.p_diffusion_forcing, df, t)
    return t


def flow_times(B: int, Fr: int, mcfg: OmniConfig, cfg: TrainConfig, gen: torch.Generator):
    """Per noisy frame: flow time t [B, Fr], step size d [B, Fr] (what the model is fed), and
    which clips train the shortcut levels [B] (the others train flow matching at d_min)."""
    K = mcfg.shortcut_steps
    d_min = 1.0 / (K or GRID_WITHOUT_SHORTCUT)
    on_grid = _uniform((B, Fr), gen) < cfg.p_t_grid
    t_fm = torch.where(on_grid, grid_t(torch.full((B, Fr), d_min), gen), logit_normal_t((B, Fr), cfg.t_mean, cfg.t_std, generator=gen))
    if cfg.p_t_one > 0:  # the one point a 1-step sampler reads, trained as often as it is read
        t_fm = torch.where(_uniform((B, Fr), gen) < cfg.p_t_one, torch.ones(B, Fr), t_fm)
    shortcut = (_uniform((B,), gen) < cfg.p_shortcut) & (K > 1)
    if K > 1:
        big = torch.tensor(shortcut_levels(K)[:-1])  # 1, 1/2, ..., 2 d_min
        d_sc = big[torch.randint(len(big), (B, Fr), generator=gen)]
        t_sc = grid_t(d_sc, gen)
        t = torch.where(shortcut[:, None], t_sc, t_fm)
        d = torch.where(shortcut[:, None], d_sc, torch.full((B, Fr), d_min))
    else:
        t, d = t_fm, torch.zeros(B, Fr)
    return t, d, shortcut


def clip_memory(clip: dict[str, torch.Tensor]) -> MemoryInputs | None:
    if "memory_tokens" not in clip:
        return None
    return MemoryInputs(clip["memory_tokens"], clip["memory_frame"], clip["memory_valid"])


@torch.no_grad()
def self_rollout(model, clip: dict[str, torch.Tensor], steps: int, gen: torch.Generator,
                 text_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The frames after the first K of each clip generated by the model itself, autoregressively
    from the real first K with the real actions, `steps` solver steps each: the reference
    sampler, which the engine's cached step matches. Returns video [B, F1, ...] (and audio), the
    first K frames real."""
    video, action, audio = clip["video"], clip["action"], clip.get("audio")
    K = model.cfg.stack
    mem = clip_memory(clip)  # within a clip no frame leaves the window: the bank stays as it is
    bank = MemoryBank.holding(mem) if mem is not None else None
    hist = History.start(video[:, :K], action[:, :K], audio[:, :K] if audio is not None else None, memory=bank, stack=K)
    gv, ga = roll_out(model, hist, action[:, K:],
                      lambda h, act, _: predict_next(model, h, act, clip["text"], text_valid, steps, generator=gen))
    return torch.cat([video[:, :K], gv], 1), (torch.cat([audio[:, :K], ga], 1) if audio is not None else None)


def world_loss(model: OmniWorldModel | torch.nn.Module, clip: dict[str, torch.Tensor], mcfg: OmniConfig,
               cfg: TrainConfig, gen: torch.Generator, teacher: OmniWorldModel | None = None,
               adversary: Adversary | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """clip: video [B, F+1, C, h, w], action [B, F+1, A], text [B, T], text_valid [B, T],
    audio [B, F+1, Na, Ca] (optional). Draws all noise from `gen` on the CPU, then moves it.
    `model` may be wrapped (DDP, compile); `mcfg` is its config. `teacher` (frozen) enables
    guidance distillation, `adversary` the adversarial loss (the loop steps its critic)."""
    raw = unwrap(model)  # the no-gradient passes skip DDP and compilation
    video = clip["video"]
    device, dtype = video.device, video.dtype
    B, F1 = video.shape[:2]
    K = mcfg.stack
    Fr = F1 - K
    audio = clip.get("audio")  # the loop leaves audio out for a model without audio tokens

    def to(x):
        return x.to(device=device, dtype=dtype)

    t_ctx = context_times(B, F1, cfg, gen, per_clip=mcfg.context_level)
    t, d, shortcut = flow_times(B, Fr, mcfg, cfg, gen)
    adv = torch.zeros(B, dtype=torch.bool)
    if adversary is not None:  # one step from pure noise: t = 1 with the largest step the model knows
        adv = _uniform((B,), gen) < cfg.p_adversarial
        t = torch.where(adv[:, None], torch.ones(B, Fr), t)
        if mcfg.shortcut_steps > 1:
            d = torch.where(adv[:, None], torch.ones(B, Fr), d)
            shortcut = shortcut | adv
    eps_ctx = torch.randn(video.shape, generator=gen)
    eps = torch.randn((B, Fr) + video.shape[2:], generator=gen)
    drop_action = (_uniform((B, 1), gen) < cfg.p_drop_action).expand(B, Fr)
    drop_text = _uniform((B, 1), gen) < cfg.p_drop_text
    rolled = _uniform((B,), gen) < cfg.p_self_rollout
    rollout_steps = int(cfg.rollout_steps[torch.randint(len(cfg.rollout_steps), (1,), generator=gen)])
    guide = (_uniform((B,), gen) < cfg.p_guidance) & (teacher is not None)
    w = 1 + (cfg.guidance_max - 1) * _uniform((B, 2), gen) * guide[:, None]
    if audio is not None:
        eps_actx = torch.randn(audio.shape, generator=gen)
        eps_a = torch.randn((B, Fr) + audio.shape[2:], generator=gen)
    text_start = ((_uniform((B,), gen) < cfg.p_text_start) if cfg.p_text_start > 0 else torch.zeros(B, dtype=torch.bool)).to(device)
    text, text_valid = clip["text"], clip["text_valid"]
    if text_start.any() and "prompt" in clip:
        text = torch.where(text_start[:, None], clip["prompt"], text)
        text_valid = torch.where(text_start[:, None], clip["prompt_valid"], text_valid)
    if text_start.any():  # the K stacked frames blank: zero latents, as a text-only stream begins
        keep = (~text_start).to(dtype)
        video = torch.cat([video[:, :K] * keep[:, None, None, None, None], video[:, K:]], 1)
        if audio is not None:
            audio = torch.cat([audio[:, :K] * keep[:, None, None, None], audio[:, K:]], 1)
        clip = {**clip, "video": video, "text": text, **({"audio": audio} if audio is not None else {})}
        t_ctx = torch.where(text_start.cpu()[:, None] & (torch.arange(F1) < K)[None], torch.zeros(B, F1), t_ctx)
    text_valid = text_valid & ~drop_text.to(device)

    memory = clip_memory(clip)
    context_v, context_a = video, audio
    stats: dict[str, float] = {}
    if rolled.any():  # the model's own frames as context, clean, as the engine writes them
        idx = rolled.nonzero()[:, 0].to(device)
        sub = {k: v[idx] for k, v in clip.items()}
        gv, ga = self_rollout(raw, sub, rollout_steps, gen, text_valid[idx])
        context_v = video.index_copy(0, idx, gv)
        if audio is not None:
            context_a = audio.index_copy(0, idx, ga)
        t_ctx = torch.where(rolled[:, None].expand(B, F1), torch.zeros(B, F1), t_ctx)
        stats["rollout_gap"] = F.mse_loss(gv[:, K:], video[idx, K:]).item()

    ctx = interpolate(context_v, to(eps_ctx), to(t_ctx)[..., None, None, None])  # [B, F1, C, h, w]
    target = video[:, K:]
    noisy = interpolate(target, to(eps), to(t)[..., None, None, None])
    act = clip["action"][:, K:]
    stacked = stacks_of(ctx, K)  # each predicted frame's K frames before it [B, F, K*C, h, w]
    # the level of a frame's stacked context: that of its newest stacked frame (one per clip when
    # the model is told it); context_embed is absent otherwise and the value unused
    level = to(t_ctx[:, K - 1:-1])
    clean = FrameInputs(video=ctx[:, K:], video_prev=stacked, action=act, t=to(t_ctx[:, K:]),
                        d=torch.zeros(B, Fr, device=device, dtype=dtype), action_drop=drop_action.to(device), context_t=level)
    noisy_in = FrameInputs(video=noisy, video_prev=stacked, action=act, t=to(t), d=to(d),
                           action_drop=drop_action.to(device), context_t=level)
    target_a = None
    if audio is not None:
        actx = interpolate(context_a, to(eps_actx), to(t_ctx)[..., None, None])
        clean.audio, clean.audio_prev = actx[:, K:], actx[:, K - 1:-1]
        target_a = audio[:, K:]
        noisy_in.audio = interpolate(target_a, to(eps_a), to(t)[..., None, None])
        noisy_in.audio_prev = actx[:, K - 1:-1]
    if mcfg.frames == 1:  # a model that attends to no frame: its frames are predicted apart, no clean stream
        clean = clean.select_frames(slice(0, 0))

    vshape, ashape = tuple(video.shape[2:]), (tuple(audio.shape[2:]) if audio is not None else None)
    goal = pack(target, target_a)  # [B, F, n]: flow matching's target, the real frames

    def denoiser(net, rows: torch.Tensor, guidance: torch.Tensor | None = None, drop_text_rows=None, drop_action_rows=None):
        """denoise(x, t, d) of `net` on clips `rows` with their context: tensors [b, F, n], [b, F, 1]."""
        c, n = clean.select(rows), noisy_in.select(rows)
        tv = text_valid[rows] if drop_text_rows is None else text_valid[rows] & ~drop_text_rows[:, None]
        if drop_action_rows is not None:
            c.action_drop = drop_action_rows[:, None].expand(len(rows), c.frames)
            n.action_drop = drop_action_rows[:, None].expand(len(rows), Fr)

        def denoise(x, tt, dd):
            vi, ai = unpack(x, vshape, ashape)
            n2 = dataclasses.replace(n, video=vi, audio=ai, t=tt[..., 0], d=dd[..., 0])
            return pack(*net(clip["text"][rows], c, n2, guidance=guidance, text_valid=tv,
                             memory=memory.select(rows) if memory is not None else None))
        return denoise

    x_t = pack(noisy_in.video, noisy_in.audio)
    if shortcut.any():  # bootstrap targets from the model itself, no gradient
        rows = shortcut.nonzero()[:, 0].to(device)
        with torch.no_grad():
            tgt = shortcut_target(denoiser(raw, rows), x_t[rows], to(t)[rows, :, None], to(d)[rows, :, None])
        goal = goal.index_copy(0, rows, tgt)
    if guide.any():  # the frozen teacher's guided estimate, one pass for the student
        rows = guide.nonzero()[:, 0].to(device)
        tt, dd = to(t)[rows, :, None], to(d)[rows, :, None]
        ones = torch.ones(len(rows), dtype=torch.bool, device=device)
        with torch.no_grad():
            cond = denoiser(teacher, rows)(x_t[rows], tt, dd)
            no_text = denoiser(teacher, rows, drop_text_rows=ones)(x_t[rows], tt, dd)
            no_action = denoiser(teacher, rows, drop_action_rows=ones)(x_t[rows], tt, dd)
        goal = goal.index_copy(0, rows, guided(cond, [no_text, no_action], to(w)[rows]))

    pred_v, pred_a = model(text, clean, noisy_in, guidance=to(w), text_valid=text_valid, memory=memory)
    err = (pack(pred_v, pred_a if audio is not None else None).float() - goal.float()) ** 2  # [B, F, n]
    nv = torch.Size(vshape).numel()
    loss_video = err[..., :nv].mean()
    loss = loss_video
    stats["loss_video"] = loss_video.item()
    if audio is not None:
        loss_audio = err[..., nv:].mean()
        loss = loss + cfg.audio_loss_weight * loss_audio
        stats["loss_audio"] = loss_audio.item()
    if adversary is not None:
        stats.update(adv_g=0.0, adv_lambda=0.0)
        if adv.any():
            rows = adv.nonzero()[:, 0].to(device)
            fake = pred_v[rows].flatten(0, 1)  # [n * F, C, h, w]
            g, st = adversary.generator_loss(fake, loss_video, raw.video_out.weight, target.flatten(0, 1))
            loss = loss + g
            stats.update(st)
    # The same keys on every batch (DDP averages them across ranks): 0 where a batch has no such clip.
    per_clip = err[..., :nv].mean((1, 2)).detach()
    sc = shortcut.to(device)
    stats["loss_shortcut"] = per_clip[sc].mean().item() if sc.any() else 0.0
    stats["loss_flow"] = per_clip[~sc].mean().item() if (~sc).any() else 0.0
    stats.setdefault("rollout_gap", 0.0)
    stats["loss"] = loss.item()
    return loss, stats
