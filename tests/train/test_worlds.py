"""One model over several worlds: buckets by grid, the action union, per-world openings, and
clips that start from text alone fed to the model as the engine feeds a prompt start."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from liveworld.common import LiveworldError
from liveworld.data.shards import Dataset
from liveworld.train.data import load_worlds


def test_two_grids_share_one_batch_schedule(tiny_worlds, tmp_path):
    run, data, tok = tiny_worlds
    wd = load_worlds([Dataset.open(d) for d in data.split(",")], tok, 4, tmp_path / "cache")
    assert wd.names == ["doom:deathmatch", "minigrid:Empty-8x8-v0"]
    grids = {w: tuple(lat.video.shape[1:]) for w, lat in wd.lats.items()}
    assert grids == {"doom:deathmatch": (4, 3, 4), "minigrid:Empty-8x8-v0": (4, 3, 3)}  # each its own, no padding
    # Two micro-batches a step: every optimiser step sees both grids, and over a run each world alike.
    for step in range(5):
        assert {wd.bucket(step, m, 2) for m in range(2)} == set(wd.names)
    assert [wd.bucket(s, 0, 1) for s in range(4)] == wd.names * 2
    # The union: Doom's 8 buttons then MiniGrid's 7 actions, each world in its own columns.
    assert wd.union.width == 8 + 7
    doom, grid = (torch.from_numpy(np.array(wd.lats[w].action)) for w in wd.names)
    assert doom[:, 8:].abs().sum() == 0 and grid[:, :8].abs().sum() == 0
    assert grid[:, 8:].sum(1).eq(1).all()  # one-hot in its own block


def test_a_checkpoint_of_two_worlds_records_each(tiny_worlds):
    run, _, _ = tiny_worlds
    meta = json.loads((run / "checkpoint" / "config.json").read_text())
    assert list(meta["worlds"]) == ["doom:deathmatch", "minigrid:Empty-8x8-v0"]
    assert meta["worlds"]["minigrid:Empty-8x8-v0"]["frame_size"] == [24, 24]
    assert meta["worlds"]["doom:deathmatch"]["frame_size"] == [32, 24]
    assert meta["config"]["action_dim"] == 15
    starts = load_file(str(run / "checkpoint" / "start.safetensors"))
    assert starts["doom:deathmatch/video"].shape[-2:] == (3, 4)
    assert starts["minigrid:Empty-8x8-v0/video"].shape[-2:] == (3, 3)
    assert "minigrid:Empty-8x8-v0/prompt_ids" in starts


def test_a_run_cannot_take_a_world_its_model_does_not_know(tiny_worlds, tmp_path):
    from liveworld.data.record import record

    run, data, tok = tiny_worlds
    union = json.loads((run / "checkpoint" / "config.json").read_text())["action_union"]
    record("babyai:GoToRedBall-v0", 1, 20, tmp_path / "baby", seed=3, val_every=0, progress=False)
    with pytest.raises(LiveworldError, match="cannot join"):
        load_worlds([Dataset.open(tmp_path / "baby")], tok, 4, tmp_path / "cache", union=union)


def test_text_start_clips_feed_what_a_prompt_start_feeds(tiny_worlds, tmp_path):
    """With p_text_start = 1 every clip's frame 0 is blank (zero video and audio latents, as
    `engine.new_session(prompt=...)` and `History.start` of zeros hold) and its text is the
    episode's description (the prompt), at context time 0."""
    import dataclasses

    from liveworld.train.config import preset
    from liveworld.train.objective import world_loss
    from liveworld.world import load_world_model

    run, data, tok = tiny_worlds
    model, meta = load_world_model(run)
    wd = load_worlds([Dataset.open(data.split(",")[1])], tok, model.cfg.text_len, tmp_path / "cache",
                     union=meta["action_union"])
    lat = wd.lats["minigrid:Empty-8x8-v0"]
    clip = lat.clip(torch.tensor([0, 5]), model.cfg.frames + 1, model.cfg)
    assert clip["prompt_valid"].any()  # MiniGrid's mission is its description
    seen = {}

    def spy(text, clean, noisy, **kw):
        seen.update(text=text, prev=noisy.video_prev, aprev=noisy.audio_prev, t=clean.t)
        return model(text, clean, noisy, **kw)

    tcfg = dataclasses.replace(preset("tiny").train, p_text_start=1.0, p_drop_text=0.0, p_ctx_noise=1.0, p_self_rollout=0.0,
                               p_shortcut=0.0)
    world_loss(spy, clip, model.cfg, tcfg, torch.Generator().manual_seed(0))
    assert torch.equal(seen["text"], clip["prompt"])
    assert seen["prev"][:, 0].abs().sum() == 0 and seen["aprev"][:, 0].abs().sum() == 0
    assert seen["prev"][:, 1:].abs().sum() > 0  # later frames follow real (noised) frames


def test_a_model_of_several_worlds_starts_from_a_one_world_model(tiny_world, tiny_run, tiny_worlds, tmp_path):
    """`train --init`: the one-world model's weights, its action columns in its world's block."""
    import dataclasses

    from liveworld.train.config import preset
    from liveworld.train.loop import train
    from liveworld.world import load_world_model

    _, data, tok = tiny_worlds
    run = preset("tiny")
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=1, lr=1e-12, warmup_steps=1, ema_decay=0.0))
    train(data, str(tmp_path / "run"), run, str(tok), progress=False, init=str(tiny_run))
    one, _ = load_world_model(tiny_run)
    many, meta = load_world_model(tmp_path / "run")
    assert meta["config"]["action_dim"] == 15 and one.cfg.action_dim == 8
    w_one, w_many = one.action_in.weight, many.action_in.weight
    assert torch.allclose(w_many[:, :8], w_one, atol=1e-6) and w_many[:, 8:].abs().max() < 1e-6
    assert torch.allclose(many.video_out.weight, one.video_out.weight, atol=1e-6)
