"""A model with memory trains on the banks its streams would hold, built by the code the
reference sampler and the engine run."""

import dataclasses

import torch

from liveworld.model.memory import MemoryBank
from liveworld.model.omni import PRESETS
from liveworld.model.sampling import History


def test_a_clips_bank_is_the_bank_of_a_stream_over_its_episode(tiny_world, tmp_path):
    from liveworld.data.shards import Dataset
    from liveworld.tokenizers.worldtok import WorldTokenizers
    from liveworld.train.data import encode_split

    ds = Dataset.open(tiny_world / "data")
    tok = WorldTokenizers(tiny_world / "tok", Dataset.open(tiny_world / "data").load(ds.ids()[0]).action_space)
    lat = encode_split(ds, "train", tok, 4)
    for rule, stride in (("recency", 1), ("novelty", 2)):
        cfg = dataclasses.replace(PRESETS["tiny"], memory_units=3, memory_patch=1, memory_rule=rule, memory_stride=stride)
        W = cfg.frames - 1
        a = int(lat.starts[0])
        i = a + 20  # a clip whose frame 0 is episode frame 20
        got = lat.memory_of(torch.tensor([i]), cfg)
        # the reference's History, streamed over the episode's real frames from its opening
        C, h, w = lat.video.shape[1:]
        bank = MemoryBank(1, 3, h * w, C, rule, stride)
        hist = History(lat.video[a:a + W + 1][None], lat.action[a:a + W + 1][None], memory=bank)
        for e in range(W + 1, 20 + W + 1):  # push until the clip's context frames are the window
            hist = hist.push(lat.video[a + e][None], lat.action[a + e][None], None, W)
        ref = hist.memory_inputs()
        assert torch.equal(hist.video[0, 0], lat.video[i])  # the clip's frame 0 is the previous-only frame
        assert sorted(got["memory_frame"][0].tolist()) == sorted(ref.frame[0].tolist())
        order_got, order_ref = got["memory_frame"][0].argsort(), ref.frame[0].argsort()
        assert torch.allclose(got["memory_tokens"][0][order_got], ref.tokens[0][order_ref])


def test_tiny_model_with_memory_trains_and_streams(tiny_world, tmp_path):
    from liveworld.engine.runner import WorldEngine
    from liveworld.train.config import apply_overrides, preset
    from liveworld.train.loop import train

    run = apply_overrides(preset("tiny"), ["--model.memory_units", "4", "--model.memory_patch", "1", "--train.steps", "3",
                                           "--train.p_self_rollout", "0.5"])
    train(str(tiny_world / "data"), str(tmp_path / "run"), run, str(tiny_world / "tok"), progress=False)
    eng = WorldEngine.load(tmp_path / "run", device="cpu", threads=1)
    s = eng.new_session(seed=0)
    for _ in range(3 * eng.window + 8):
        frame, _ = eng.step(s, ["MOVE_FORWARD"])
    assert len(s.memory) == 4 and eng.memory_units_fused > 0 and frame.dtype.name == "uint8"
    # and evaluation measures what the memory adds on a fresh revisit route
    from liveworld.eval.evaluate import evaluate

    res = evaluate(str(tmp_path / "run"), str(tiny_world / "data"), frames=4, starts=1, stability_frames=0,
                   horizons=(1, 8), revisit_count=1)
    assert set(res["revisit_psnr_db"]) == set(res["revisit_psnr_db_no_memory"]) == {">=32", ">=64"}
    assert res["revisit_pairs"] >= 1 and res["revisit_psnr_db"][">=32"] > 0


def test_two_data_sets_of_one_world_train_as_one(tiny_world, tmp_path):
    """An exploring recording plus revisit routes (what a memory model needs to see come back)."""
    import json

    import numpy as np

    from liveworld.train.config import apply_overrides, preset
    from liveworld.train.loop import train

    from liveworld.data.record import record
    from liveworld.train.data import Latents

    record("doom:deathmatch", 2, 40, tmp_path / "revisit", "revisit", seed=21, val_every=0, progress=False)
    run = apply_overrides(preset("tiny"), ["--train.steps", "1"])
    data = f"{tiny_world / 'data'},{tmp_path / 'revisit'}"
    train(data, str(tmp_path / "run"), run, str(tiny_world / "tok"), progress=False)
    meta = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert meta["world"]["dataset"].split(",")[1].endswith("revisit")
    first = Latents.load(tmp_path / "run" / "cache" / "latents-train")
    second = Latents.load(tmp_path / "run" / "cache" / "1-revisit" / "latents-train")
    both = Latents.concat([first, second])
    assert int(both.starts[-1]) == int(first.starts[-1]) + int(second.starts[-1])
    assert len(both.starts) == len(first.starts) + len(second.starts) - 1
    assert torch.equal(both.video[int(first.starts[-1]):], torch.from_numpy(np.array(second.video)))
    assert "worlds" not in meta  # one world: no union, the one-world checkpoint as before
