"""`liveworld eval` end to end on tiny checkpoints, and the paired comparisons it rests on: a
model that ignores actions has an action effect of exactly 0 when true and other actions draw
the same noise."""

import copy
import dataclasses
import json

import numpy as np
import torch

from liveworld.cli import main
from liveworld.data.shards import Dataset
from liveworld.eval.episodes import encode_episode, history_length
from liveworld.eval.figures import (
    rollout_figures,
    rollout_starts,
    teacher_forced,
    turn_columns,
)
from liveworld.eval.rollout import Sampling
from liveworld.world import load_world_model, load_world_tokenizers

FIGURES = ("next_frame_gain_db", "action_effect_db", "turn_swap_db", "rollout_minus_hold_db", "edge_ratio",
           "world_kept_at_1000", "in_range_last100", "rollout_action_effect_db")


class IgnoresActions(torch.nn.Module):
    """The wrapped model with every action it is given replaced by zeros."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.cfg = model, model.cfg

    @staticmethod
    def _blank(seg):
        zeros = {f.name: torch.zeros_like(getattr(seg, f.name)) for f in dataclasses.fields(seg)
                 if "action" in f.name and f.name != "action_drop" and getattr(seg, f.name) is not None}
        return dataclasses.replace(seg, **zeros)

    def forward(self, text, clean, noisy, **kw):
        return self.inner(text, self._blank(clean), self._blank(noisy), **kw)


def _paired_figures(model, tok, eps, seed=0):
    sampling = Sampling(1)
    pos = [(e, t) for e, ep in enumerate(eps) for t in range(1, len(ep))]
    tf = teacher_forced(model, tok, sampling, eps, pos, torch.Generator().manual_seed(seed), np.random.default_rng(seed))
    starts, H = rollout_starts(eps, history_length(model.cfg), 8, 8, np.random.default_rng(seed))
    roll, _ = rollout_figures(model, tok, sampling, eps, starts, H, torch.Generator().manual_seed(seed), np.random.default_rng(seed))
    return tf, roll


def test_the_action_effect_of_a_model_that_ignores_actions_is_zero_with_paired_noise(tiny_world, tiny_run):
    model, meta = load_world_model(tiny_run)
    tok = load_world_tokenizers(meta)
    ds = Dataset.open(tiny_world / "data")
    eps = [encode_episode(ds.load(i), tok, model.cfg.text_len) for i in ds.ids()]
    assert turn_columns(tok) == (2, 3)  # TURN_LEFT, TURN_RIGHT of Doom's buttons
    tf, roll = _paired_figures(IgnoresActions(model), tok, eps)
    assert tf["action_effect_positions"] > 20 and tf["turn_swap_positions"] > 0 and roll["rollout_action_effect_starts"] > 0
    for fig in (tf["action_effect_db"], tf["turn_swap_db"], roll["rollout_action_effect_db"]):
        assert abs(fig) < 1e-6
    # a model that reads its actions (the tiny run's output heads, barely trained, drawn at
    # random so that the action path shows): the figures move, so they can fail
    reads = copy.deepcopy(model)
    torch.manual_seed(0)
    for m in (reads.video_out, reads.ada_out):
        torch.nn.init.normal_(m.weight, std=0.2)
    tf, roll = _paired_figures(reads, tok, eps)
    assert abs(tf["action_effect_db"]) > 1e-6 and abs(roll["rollout_action_effect_db"]) > 1e-6
    assert tf["identical_consecutive_frames"] >= 0 and np.isfinite(tf["copy_last_psnr_db"])


def test_default_eval_of_the_tiny_run_completes_with_every_figure(tiny_world, tiny_run, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tiny_run), "--data", str(tiny_world / "data"), "--json",
                 "--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    assert "next frame vs copy-last" in out[2]
    for k in FIGURES:
        assert k in res and k + "_se" in res, k
    assert set(res["rollout_minus_hold_db"]) == {"8", "32"} and set(res["edge_ratio"]) == {"1", "32", "last100"}
    assert all(v is not None for v in res["rollout_minus_hold_db"].values()) and all(v is not None for v in res["edge_ratio"].values())
    assert res["streams"] == 16 and res["stream_frames"] == 1000 and res["rollout_horizon"] == 32
    assert 0 <= res["world_kept_at_1000"] <= 1 and 0 <= res["in_range_last100"] <= 1
    assert res["steps"] == 1 and res["guidance"] == 1.0 and res["d"] == 1.0  # a shortcut model's one step feeds d = 1
    assert res["positions"] == sum(len(Dataset.open(tiny_world / "data").load(i)) - 1 for i in Dataset.open(tiny_world / "data").ids("val"))
    assert "audio_lsd_db" in res and "audio_edge_click_db" in res
    assert (tmp_path / "report" / "index.html").exists() and (tmp_path / "report" / "stability.png").exists()


def test_eval_with_revisits(tiny_world, tiny_run):
    from liveworld.eval.evaluate import evaluate

    res = evaluate(str(tiny_run), str(tiny_world / "data"), positions=8, starts=2, streams=0, revisit_count=1)
    assert res["revisit_pairs"] >= 1 and res["revisit_gap_frames"]["min"] >= 32
    assert "revisit_psnr_db" not in res and res["revisit_psnr_db_no_memory"][">=32"] is not None
    assert res["world_kept_at_1000"] is None and res["edge_ratio"]["last100"] is None


def test_eval_of_two_worlds_gives_each_its_figures_and_the_text_figures(tiny_worlds, capsys):
    run, data, _ = tiny_worlds
    assert main(["eval", "--checkpoint", str(run), "--data", data, "--positions", "16", "--starts", "4", "--streams", "2",
                 "--stream-frames", "40", "--split", "all", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(res["worlds"]) == ["doom:deathmatch", "minigrid:Empty-8x8-v0"]
    for w, r in res["worlds"].items():
        assert r["world"] == w and isinstance(r["text_delta_psnr_db"], float)
        for k in FIGURES:
            assert k in r, k
        assert set(r["world_classes"][:2]) == {"doom:deathmatch", "minigrid:Empty-8x8-v0"}  # each world's own first, the other among them
    doom, grid = res["worlds"]["doom:deathmatch"], res["worlds"]["minigrid:Empty-8x8-v0"]
    assert "audio_edge_click_db" in doom and "shot_audio_recall" in doom and "audio_lsd_copy_last_db" in doom
    # MiniGrid's 24-frame episodes: rolled out as far as they go, the 32-frame figures null, no error
    assert grid["rollout_horizon"] < 32 and grid["rollout_minus_hold_db"]["32"] is None and grid["rollout_minus_hold_db"]["8"] is not None
    assert grid["turn_swap_db"] is not None or grid["turn_swap_positions"] == 0  # left / right turn a grid agent
    assert 0 <= res["text_to_world_accuracy"] <= 1 and 0 <= res["text_to_world_accuracy_any_grid"] <= 1
    assert sum(res["text_to_world_assigned"]["doom:deathmatch"].values()) == res["text_to_world_samples"]
    # one world alone: its figures at the top level
    assert main(["eval", "--checkpoint", str(run), "--world", "minigrid:Empty-8x8-v0", "--data", data.split(",")[1],
                 "--positions", "8", "--starts", "2", "--streams", "0", "--split", "all", "--json"]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert one["world"] == "minigrid:Empty-8x8-v0" and "worlds" not in one and "next_frame_gain_db" in one


def test_eval_of_a_stack_model_reads_its_stacked_history(tiny_world, tiny_stack_run):
    from liveworld.eval.evaluate import evaluate

    res = evaluate(str(tiny_stack_run), str(tiny_world / "data"), positions=16, starts=4, streams=2, stream_frames=20)
    assert res["stack"] == 3 and res["window"] == 0 and res["d"] == 0.0  # no shortcut levels: d is never fed
    for k in FIGURES:
        assert k in res, k
    assert res["rollout_minus_hold_db"]["8"] is not None and res["world_kept_at_1000"] is not None
