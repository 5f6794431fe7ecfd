"""Adversarial post-training of the one-step generator (APT, Lin et al. 2025, "Diffusion
Adversarial Post-Training for One-Step Video Generation"; its autoregressive, real-time form AAPT).

Why: a regression loss makes a one-step frame the conditional *mean* of the next frame. A mean
is blurrier than any real frame, the blur is fed back as context, and over hundreds of frames
the stream decays into mush or clouds (docs/RESULTS.md, the drift probes). A critic that tells
real frames from the model's one-step frames pulls every generated frame back onto the
manifold of real frames, including frames generated from the model's own rolled-out context,
which is where the engine lives.

    critic       a small convolutional PatchGAN over the frame's pixels, decoded from its latent
                 by the frozen video decoder (differentiable); any frame size, logits per patch.
                 A critic of the latents alone could not tell: a blurred frame's latent differs
                 from a sharp one's by little (latent std 0.91 against 1.0 on the v2 weights) and
                 such a critic stayed at chance for 200 steps
    generator    non-saturating loss softplus(-D(fake)), weighted against the regression loss by
                 the ratio of their gradient norms at the model's last layer (VQGAN's adaptive
                 weight, Esser et al. 2021), so one `weight` works across losses' scales
    critic step  softplus(D(fake)) + softplus(-D(real)) + gamma/2 |grad D(real)|^2 (R1, Mescheder
                 et al. 2018), with its own AdamW

Knows a critic and its losses; the objective decides which frames are fake, the loop when to step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from liveworld.train.optim import load_optimizer_tensors, optimizer_tensors


@dataclass(frozen=True)
class CriticConfig:
    channels: int = 64
    # A one-step frame differs from a real one in detail, not content (mean |difference| 0.04 on
    # the v2 weights): with R1 gamma 0.05-1 or lr 4e-4, or without momentum, a critic could not
    # even tell 8 such frames from their real ones in 60-100 steps; with these it could.
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    r1: float = 0.002  # gamma of the R1 penalty on real frames
    max_weight: float = 10.0  # cap of the adaptive weight, for a critic that is still flat
    warmup_steps: int = 50  # the generator's adversarial weight ramps up over the critic's first steps
    # Patch logits judge local texture only; a global logit (a linear map of the whole feature
    # grid, so it knows where things are) also judges layout: a floor below, the gun at the bottom.
    global_head: bool = True


class PixelCritic(nn.Module):
    """Real-vs-generated logits of frames [B, 3, H, W] in [0, 1]: one per patch (a PatchGAN,
    Isola et al. 2017; each sees about 40 x 40 pixels) and, with global_head, one per frame from
    the whole feature grid pooled to 6 x 8 cells -> [B, H/8 * W/8 (+ 1)]."""

    GRID = (6, 8)

    def __init__(self, cfg: CriticConfig = CriticConfig()):
        super().__init__()
        ch = cfg.channels
        self.features = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * ch, 4 * ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * ch, 4 * ch, 3, padding=1), nn.LeakyReLU(0.2),
        )
        self.patch = nn.Conv2d(4 * ch, 1, 3, padding=1)
        self.whole = nn.Linear(4 * ch * self.GRID[0] * self.GRID[1], 1) if cfg.global_head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x * 2 - 1)
        out = self.patch(f).flatten(1)
        if self.whole is not None:
            out = torch.cat([out, self.whole(F.adaptive_avg_pool2d(f, self.GRID).flatten(1))], 1)
        return out


class Adversary:
    """The critic, its optimiser and the frames waiting for its next step.

        adv.generator_loss(fake, ref_loss, last_weight, real)  # inside the objective, with grad
        ...backward of the model's loss...
        adv.step()                                            # the critic's update, after it
    """

    def __init__(self, critic: PixelCritic, cfg: CriticConfig, weight: float, decode: Callable[[torch.Tensor], torch.Tensor]):
        """decode: frame latents [N, C, h, w] -> pixels [N, 3, H, W] (frozen, differentiable)."""
        self.critic, self.cfg, self.weight, self.decode = critic, cfg, weight, decode
        self.opt = torch.optim.AdamW(critic.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=0.0)
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def steps(self) -> int:
        """Critic updates so far: the optimiser's own count (so a resumed run has it too)."""
        first = next(iter(self.critic.parameters()))
        return int(self.opt.state.get(first, {}).get("step", 0))

    def generator_loss(self, fake: torch.Tensor, ref_loss: torch.Tensor, last_weight: torch.Tensor,
                       real: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """weight x adaptive x softplus(-D(decode(fake))), fake latents [N, C, h, w] with gradient
        to the model; `real` latents [M, C, h, w] wait with fake (detached) for the critic's step."""
        for p in self.critic.parameters():
            p.requires_grad_(False)  # the generator's backward leaves the critic alone
        fake_px = self.decode(fake.float())
        g = self._mean(F.softplus(-self.critic(fake_px)))
        for p in self.critic.parameters():
            p.requires_grad_(True)
        gr = torch.autograd.grad(ref_loss, last_weight, retain_graph=True)[0].norm()
        ga = torch.autograd.grad(g, last_weight, retain_graph=True)[0].norm()
        ramp = min(1.0, self.steps / self.cfg.warmup_steps) if self.cfg.warmup_steps else 1.0
        lam = (gr / (ga + 1e-8)).clamp(max=self.cfg.max_weight).detach() * self.weight * ramp
        with torch.no_grad():
            real_px = self.decode(real.float())
        self.pending.append((real_px, fake_px.detach()))
        return lam * g, {"adv_g": g.item(), "adv_lambda": lam.item()}

    def step(self) -> dict[str, float]:
        """One critic update on everything generator_loss saw since the last step. Under torchrun
        every rank calls it (its gradients are averaged), also a rank that saw no fake frame."""
        self.opt.zero_grad(set_to_none=False)
        stats = {"adv_d": 0.0, "adv_r1": 0.0, "adv_real_acc": 0.0, "adv_fake_acc": 0.0}
        if self.pending:
            real = torch.cat([r for r, _ in self.pending]).requires_grad_(True)
            fake = torch.cat([f for _, f in self.pending])
            self.pending = []
            d_real, d_fake = self.critic(real), self.critic(fake)
            loss = self._mean(F.softplus(-d_real)) + self._mean(F.softplus(d_fake))
            grad = torch.autograd.grad(d_real.sum(), real, create_graph=True)[0]
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            (loss + 0.5 * self.cfg.r1 * r1).backward()
            stats = {"adv_d": loss.item(), "adv_r1": r1.item(), "adv_real_acc": (d_real > 0).float().mean().item(),
                     "adv_fake_acc": (d_fake < 0).float().mean().item()}
        if dist.is_initialized() and dist.get_world_size() > 1:
            for p in self.critic.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()
        self.opt.step()
        return stats

    def _mean(self, z: torch.Tensor) -> torch.Tensor:
        """The patch logits' mean and the global logit count alike."""
        if self.critic.whole is None:
            return z.mean()
        return 0.5 * (z[:, :-1].mean() + z[:, -1].mean())

    def state_tensors(self) -> dict[str, torch.Tensor]:
        ts = {f"critic.{k}": v.detach().cpu() for k, v in self.critic.state_dict().items()}
        ts.update({f"critic_{k}": v for k, v in optimizer_tensors(self.opt).items()})
        return ts

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.critic.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("critic.")})
        load_optimizer_tensors(self.opt, {k[7:]: v for k, v in state.items() if k.startswith("critic_opt.")})
