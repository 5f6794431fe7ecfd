"""The run configuration of `liveworld train`: the model's config plus the training recipe, as
frozen dataclasses with presets in Python and dotted overrides from the command line
(`--model.depth 8 --train.lr 3e-4`).

This module knows configs; it does not train anything.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from liveworld.common import LiveworldError
from liveworld.model.omni import PRESETS as MODEL_PRESETS
from liveworld.model.omni import OmniConfig


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8  # global batch, split across ranks under torchrun
    micro_batch: int = 0  # per forward pass; 0: batch_size / ranks (no gradient accumulation)
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    steps: int = 20000  # stop at whichever comes first: steps or minutes
    minutes: float = 0.0  # 0: no time limit
    ema_decay: float = 0.999
    save_every_steps: int = 500
    log_every_steps: int = 25
    # Flow matching (liveworld/flow) at the smallest step: t on the sampler's grid (t = 1
    # included) with p_t_grid, else logit-normal(t_mean, t_std).
    p_t_grid: float = 0.5
    t_mean: float = 0.0
    t_std: float = 1.0
    # The share of frames at exactly t = 1 (pure noise), the one point a 1-step sampler reads
    # (logit-normal puts 0.16% of samples above t = 0.95: CALIBRATION.md).
    p_t_one: float = 0.0
    # Frames predicted per clip by a model that attends to no frame (model.frames = 1), each from
    # its own stack; they share the clip's text. Other models predict model.frames per clip.
    clip_targets: int = 4
    # Shortcut (trajectory folding): the share of clips that train step sizes > d_min against
    # the model's own two half steps (needs model.shortcut_steps > 1).
    p_shortcut: float = 0.5
    # Self-rollout: the share of clips whose context the model generates itself, with a step
    # count drawn from rollout_steps (the engine's choices).
    p_self_rollout: float = 0.0
    rollout_steps: tuple[int, ...] = (1, 2)
    # Guidance distillation (only with a teacher: `liveworld distill`): the share of clips with
    # guidance scales w ~ U(1, guidance_max) per condition, learning the teacher's CFG estimate.
    p_guidance: float = 0.0
    guidance_max: float = 3.0
    # Adversarial post-training (train/adversarial.py): the share of clips whose frames are all
    # one step from pure noise (t = 1, d = 1, the engine's regime), judged by a critic of their
    # decoded pixels;
    # adv_weight scales its loss against the regression loss (after the adaptive weight).
    p_adversarial: float = 0.0
    adv_weight: float = 0.5
    # Context of the clean stream: with p_ctx_noise its frames get noise t ~ U(0, ctx_noise_max)
    # (GameNGen/DIAMOND's remedy for drift), with p_diffusion_forcing an independent t ~ U(0, 1)
    # per frame (diffusion forcing, Chen et al. 2024); otherwise they are clean.
    p_ctx_noise: float = 0.5
    ctx_noise_max: float = 0.3
    p_diffusion_forcing: float = 0.1
    # Condition dropout, so classifier-free guidance works (Ho & Salimans 2022).
    p_drop_action: float = 0.1
    p_drop_text: float = 0.1
    # Clips that start from text alone (`play --prompt`): the first frame's "previous frame" is
    # blank (zero latents, zero audio), there is no context, and the text is the episode's
    # description, so the model learns to open a world from its prompt.
    p_text_start: float = 0.0
    audio_loss_weight: float = 0.5
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    compile: bool = False


@dataclass(frozen=True)
class RunConfig:
    preset: str = "cpu"
    model: OmniConfig = field(default_factory=OmniConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _train_preset(name: str) -> TrainConfig:
    if name == "tiny":
        return TrainConfig(batch_size=4, lr=2e-3, warmup_steps=5, steps=40, save_every_steps=20, log_every_steps=5)
    if name == "cpu":
        return TrainConfig(batch_size=8, lr=5e-4, steps=100000, minutes=90.0, save_every_steps=200, p_text_start=0.05)
    if name == "stack":  # one frame's tokens per prediction: a batch of 64 predicted frames
        return TrainConfig(batch_size=16, lr=1e-3, warmup_steps=200, steps=1000000, minutes=90.0, save_every_steps=500,
                           p_t_grid=0.5, p_t_one=0.3, p_shortcut=0.0, p_ctx_noise=0.7, ctx_noise_max=0.3,
                           p_diffusion_forcing=0.0, p_text_start=0.05, clip_targets=4, audio_loss_weight=0.25)
    if name == "tiny-stack":
        return TrainConfig(batch_size=4, lr=2e-3, warmup_steps=5, steps=40, save_every_steps=20, log_every_steps=5,
                           p_t_one=0.3, p_shortcut=0.0, p_diffusion_forcing=0.0, clip_targets=2)
    if name == "gpu":
        return TrainConfig(batch_size=64, lr=3e-4, warmup_steps=2000, steps=300000, save_every_steps=2000, compile=True,
                           p_text_start=0.05)
    raise LiveworldError(f"unknown preset {name!r}; choose one of: {', '.join(MODEL_PRESETS)}")


def distill_config(teacher: TrainConfig, minutes: float = 30.0) -> TrainConfig:
    """The recipe of `liveworld distill`, from the teacher's: the same data and shortcut
    objective, plus the model's own rollouts as context and guidance learned from the frozen
    teacher, at a lower learning rate for a short time."""
    return dataclasses.replace(teacher, lr=teacher.lr * 0.4, warmup_steps=50, minutes=minutes, steps=100000,
                               p_self_rollout=0.5, p_guidance=0.25)


def preset(name: str) -> RunConfig:
    if name not in MODEL_PRESETS:
        raise LiveworldError(f"unknown preset {name!r}; choose one of: {', '.join(MODEL_PRESETS)}")
    return RunConfig(preset=name, model=MODEL_PRESETS[name], train=_train_preset(name))


def _parse(value: str, like):
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ValueError(value)
    if isinstance(like, tuple):
        return tuple(json.loads(value if value.startswith("[") else f"[{value}]"))
    return type(like)(value)


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """`["--model.depth", "8", "--train.lr=3e-4"]` -> a new RunConfig."""
    pairs, i = [], 0
    while i < len(overrides):
        item = overrides[i]
        if not item.startswith("--") or "." not in item:
            raise LiveworldError(f"unknown argument {item!r}; overrides look like --model.depth 8 or --train.lr 3e-4")
        if "=" in item:
            key, value = item[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(overrides):
                raise LiveworldError(f"override {item} needs a value")
            key, value = item[2:], overrides[i + 1]
            i += 2
        pairs.append((key, value))
    for key, value in pairs:
        section, _, name = key.partition(".")
        if section not in ("model", "train"):
            raise LiveworldError(f"override {key!r}: the section must be 'model' or 'train'")
        sub = getattr(cfg, section)
        names = {f.name for f in dataclasses.fields(sub)}
        if name not in names:
            raise LiveworldError(f"override {key!r}: {type(sub).__name__} has no field {name!r}; fields: {', '.join(sorted(names))}")
        try:
            new = dataclasses.replace(sub, **{name: _parse(value, getattr(sub, name))})
        except ValueError as e:
            raise LiveworldError(f"override {key}={value!r}: not a valid {type(getattr(sub, name)).__name__}") from e
        cfg = dataclasses.replace(cfg, **{section: new})
    return cfg
