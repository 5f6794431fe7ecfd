"""Adversarial post-training: the critic tells real frames from blurred ones, its loss lifts a
generator out of the blurred mean that regression alone drives it to, and `liveworld distill`
with a critic saves and resumes the critic's state. Here the "latents" are the pixels
(decode = identity); training decodes with the frozen video decoder."""

import torch
from safetensors.torch import load_file

from liveworld.cli import main
from liveworld.train.adversarial import Adversary, CriticConfig, PixelCritic


def _real(n, gen):
    """Frames with structure: sharp 4x4 blocks of colour that a blur washes out."""
    x = torch.rand((n, 3, 6, 8), generator=gen).round()
    return x.repeat_interleave(4, 2).repeat_interleave(4, 3)  # [n, 3, 24, 32]


def _adversary(seed):
    torch.manual_seed(seed)
    cfg = CriticConfig(channels=16, lr=1e-3, warmup_steps=0, global_head=False)
    return Adversary(PixelCritic(cfg), cfg, weight=1.0, decode=lambda z: z)


def test_critic_loss_lifts_a_generator_out_of_the_mean():
    def train(adversarial: bool) -> float:
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        # a "generator": noise through a linear map started near zero, the conditional mean's mush
        g = torch.nn.Linear(3, 3)
        with torch.no_grad():
            g.weight.mul_(0.05)
            g.bias.fill_(0.5)
        opt = torch.optim.Adam(g.parameters(), lr=1e-2)
        adv = _adversary(0)
        for _ in range(150):
            z = torch.randn((32, 24, 32, 3), generator=gen)
            fake = g(z).permute(0, 3, 1, 2)
            real = _real(32, gen)
            ref = (fake - 0.5).pow(2).mean()  # regression towards the mean (0.5) of the real frames
            loss = ref
            if adversarial:
                gl, st = adv.generator_loss(fake, ref, g.weight, real)
                loss = loss + gl
            opt.zero_grad()
            loss.backward()
            opt.step()
            if adversarial:
                adv.step()
        return g(torch.randn((256, 24, 32, 3), generator=gen)).std().item()

    assert train(False) < 0.02  # regression alone collapses to the mean
    assert train(True) > 0.1  # the critic keeps the samples spread like real ones (std 0.5)


def test_critic_separates_real_from_blurred():
    gen = torch.Generator().manual_seed(1)
    adv = _adversary(1)
    blur = torch.nn.AvgPool2d(5, 1, 2, count_include_pad=False)
    for _ in range(60):
        real = _real(32, gen)
        adv.pending.append((real, blur(_real(32, gen))))
        st = adv.step()
    assert st["adv_real_acc"] > 0.9 and st["adv_fake_acc"] > 0.9, st


def test_distill_with_a_critic_saves_and_resumes_it(tiny_world, tiny_run, tmp_path):
    out = tmp_path / "apt"
    data = str(tiny_world / "data")
    assert main(["distill", str(tiny_run), "--out", str(out), "--data", data, "--train.steps", "2",
                 "--train.p_adversarial", "1.0", "--train.p_self_rollout", "0.5"]) == 0
    state = load_file(str(out / "checkpoint" / "train_state.safetensors"))
    critic = {k: v for k, v in state.items() if k.startswith("critic.")}
    assert critic and any(k.startswith("critic_opt.") for k in state)
    assert main(["distill", "--out", str(out), "--resume"]) == 0  # the schedule is done: restores, saves, stops
    again = load_file(str(out / "checkpoint" / "train_state.safetensors"))
    assert all(torch.equal(v, again[k]) for k, v in critic.items())  # the critic came back, not a new one
