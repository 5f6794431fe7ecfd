"""Pieces both training loops share (the world model's and the tokenizers'): the learning-rate
schedule, the EMA of the weights, and the optimiser state as flat tensors for safetensors.
Pure functions of their arguments; they know nothing about models or data."""

from __future__ import annotations

import math

import torch

ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")


def warmup_cosine_lr(peak: float, step: int, warmup: int, frac: float, floor: float) -> float:
    """Linear warm-up over `warmup` steps, then a cosine from `peak` down to `floor * peak` as the
    budget fraction `frac` goes from 0 to 1 (a budget in steps or in minutes)."""
    return peak * min(1.0, (step + 1) / warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


@torch.no_grad()
def ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, step: int, decay: float) -> None:
    """ema <- d ema + (1 - d) weights, with d warming up as (step + 1) / (step + 10) so the early
    average is not dominated by the initialisation; integer buffers are copied."""
    d = min(decay, (step + 1) / (step + 10))
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            ema[k].lerp_(v, 1 - d)
        else:
            ema[k].copy_(v)


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """AdamW's per-parameter state as {"opt.{i}.{name}": tensor}."""
    return {f"opt.{i}.{n}": t.detach().cpu() for i, s in opt.state_dict()["state"].items() for n, t in s.items()}


def load_optimizer_tensors(opt: torch.optim.Optimizer, state: dict[str, torch.Tensor]) -> None:
    """The inverse of `optimizer_tensors`; parameters without saved state keep none."""
    osd = opt.state_dict()
    for i in range(sum(len(g["params"]) for g in osd["param_groups"])):
        if f"opt.{i}.exp_avg" in state:
            osd["state"][i] = {n: state[f"opt.{i}.{n}"] for n in ADAM_STATE}
    opt.load_state_dict(osd)
