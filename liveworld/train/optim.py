"""The skeleton every training run shares (tokenizers, the world-model teacher, distillation):
the learning-rate schedule over a budget of steps or minutes, the EMA of the weights, the
optimiser step, and the whole state as flat tensors for an atomic safetensors checkpoint, so a
killed run resumes where it stopped. The loops around it (train/loop.py, train/tokenizers.py)
only draw batches, compute losses and decide what to save.

Knows optimisation; knows nothing about models, data or checkpoints on disk.
"""

from __future__ import annotations

import math
import time

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


class Trainer:
    """AdamW + warm-up/cosine + EMA + budget, for one model.

        trainer = Trainer(model, opt, peak_lr, warmup, steps=N, minutes=M)
        while not trainer.done():
            trainer.set_lr(); loss.backward(); trainer.update()
        trainer.state_tensors()  # -> checkpoint; Trainer.restore(...) after a kill
    """

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer, peak_lr: float, warmup: int,
                 steps: float = math.inf, minutes: float = 0.0, ema_decay: float = 0.999, floor: float = 0.1,
                 clip: float = 1.0):
        self.model, self.opt = model, opt
        self.peak_lr, self.warmup, self.floor, self.clip, self.ema_decay = peak_lr, warmup, floor, clip, ema_decay
        self.total_steps = steps
        self.budget_s = minutes * 60 if minutes and minutes > 0 else math.inf
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.step, self.elapsed = 0, 0.0
        self._t0 = time.perf_counter()

    def frac(self) -> float:
        """How much of the budget (steps or minutes, whichever runs out first) is spent."""
        return min(1.0, max(self.step / self.total_steps, self.elapsed / self.budget_s))

    def done(self, stop_step: float = math.inf) -> bool:
        return self.frac() >= 1.0 or self.step >= stop_step

    def set_lr(self) -> float:
        lr = warmup_cosine_lr(self.peak_lr, self.step, self.warmup, self.frac(), self.floor)
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    def update(self) -> None:
        """Clips the gradient, steps the optimiser and the EMA, advances the clock."""
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.step += 1
        ema_update(self.ema, self.model, self.step, self.ema_decay)
        self.elapsed = time.perf_counter() - self._t0

    def state_tensors(self) -> dict[str, torch.Tensor]:
        ts = {f"live.{k}": v.detach().cpu() for k, v in self.model.state_dict().items()}
        ts.update({f"ema.{k}": v.detach().cpu() for k, v in self.ema.items()})
        ts.update(optimizer_tensors(self.opt))
        return ts

    def info(self, **extra) -> dict:
        return {"step": self.step, "elapsed_s": self.elapsed, **extra}

    def restore(self, state: dict[str, torch.Tensor], info: dict) -> None:
        """Continues a killed run from `state_tensors()` and `info()`."""
        device = next(self.model.parameters()).device
        self.model.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("live.")})
        self.ema = {k[4:]: v.to(device) for k, v in state.items() if k.startswith("ema.")}
        load_optimizer_tensors(self.opt, state)
        self.step, self.elapsed = info["step"], info["elapsed_s"]
        self._t0 = time.perf_counter() - self.elapsed

    def sync_elapsed(self, elapsed: float) -> None:
        """Under torchrun every rank takes rank 0's clock, so all stop at the same step."""
        self.elapsed = elapsed
        self._t0 = time.perf_counter() - elapsed
