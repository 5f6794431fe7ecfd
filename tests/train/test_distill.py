"""Guidance distilled into the weights: one pass with w as input reproduces the teacher's
classifier-free-guided estimate; `liveworld distill` runs, saves and resumes."""

import copy
import dataclasses

import torch

from liveworld.cli import main
from liveworld.flow import guided
from liveworld.model.omni import PRESETS, FrameInputs, OmniWorldModel
from liveworld.train.config import preset
from liveworld.train.objective import world_loss
from liveworld.world import load_world_model


def _clip(cfg, B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    F1, (h, w) = cfg.frames + 1, (2, 3)
    return {"video": torch.randn((B, F1, cfg.video_channels, h, w), generator=g),
            "action": torch.randint(0, 2, (B, F1, cfg.action_dim), generator=g).float(),
            "text": torch.randint(0, cfg.text_vocab, (B, cfg.text_len), generator=g),
            "text_valid": torch.ones(B, cfg.text_len, dtype=torch.bool),
            "audio": torch.randn((B, F1, cfg.audio_tokens, cfg.audio_channels), generator=g)}


def test_guided_single_pass_learns_the_cfg_combination():
    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS["tiny"], audio_tokens=0, width=64, heads=4)
    teacher = OmniWorldModel(cfg)
    with torch.no_grad():  # a teacher whose conditions matter: no zero-initialised gates
        for p in teacher.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    teacher.requires_grad_(False)
    student = copy.deepcopy(teacher).requires_grad_(True)
    clip = _clip(cfg)
    del clip["audio"]
    tcfg = dataclasses.replace(preset("tiny").train, p_guidance=1.0, p_shortcut=0.0, p_drop_action=0.0, p_drop_text=0.0,
                               p_ctx_noise=0.0, p_diffusion_forcing=0.0)

    def gap():
        """|student(w) - guided teacher| against |unguided teacher - guided teacher| on one batch."""
        B, F = clip["video"].shape[0], cfg.frames
        g = torch.Generator().manual_seed(99)
        x = torch.randn((B, F) + clip["video"].shape[2:], generator=g)
        t, d = torch.full((B, F), 0.75), torch.full((B, F), 0.25)
        w = torch.tensor([[2.0, 2.5]] * B)

        def seg(drop_action=False):
            return FrameInputs(video=x, video_prev=clip["video"][:, :-1], action=clip["action"][:, 1:], t=t, d=d,
                               action_drop=torch.full((B, F), drop_action))

        clean = FrameInputs(video=clip["video"][:, 1:], video_prev=clip["video"][:, :-1], action=clip["action"][:, 1:],
                            t=torch.zeros(B, F), d=torch.zeros(B, F))
        with torch.no_grad():
            cond = teacher(clip["text"], clean, seg(), text_valid=clip["text_valid"])[0]
            no_text = teacher(clip["text"], clean, seg(), text_valid=torch.zeros_like(clip["text_valid"]))[0]
            clean_na = dataclasses.replace(clean, action_drop=torch.ones(B, F, dtype=torch.bool))
            no_action = teacher(clip["text"], clean_na, seg(True), text_valid=clip["text_valid"])[0]
            target = guided(cond, [no_text, no_action], w)
            one_pass = student(clip["text"], clean, seg(), guidance=w, text_valid=clip["text_valid"])[0]
        return (one_pass - target).pow(2).mean().item(), (cond - target).pow(2).mean().item()

    before, effect = gap()
    assert effect > 1e-3  # guidance changes the estimate: the test could fail
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    for step in range(300):
        loss, _ = world_loss(student, clip, cfg, tcfg, torch.Generator().manual_seed(step), teacher=teacher)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = gap()
    assert after < 0.15 * effect, (before, after, effect)


def test_distill_cli_runs_and_resumes(tiny_world, tiny_run, tmp_path):
    out = tmp_path / "distilled"
    data = str(tiny_world / "data")
    assert main(["distill", str(tiny_run), "--out", str(out), "--data", data, "--train.steps", "2",
                 "--train.p_self_rollout", "1.0", "--train.p_guidance", "1.0"]) == 0
    model, meta = load_world_model(out)
    assert meta["teacher"] and meta["step"] == 2 and meta["run"]["train"]["p_guidance"] == 1.0
    assert (out / "checkpoint" / "start.safetensors").exists()
    assert main(["distill", "--out", str(out), "--resume"]) == 0  # the schedule is done: resumes, saves, stops
