import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from liveworld.checkpoint import load_state
from liveworld.common import LiveworldError
from liveworld.train.config import apply_overrides, preset
from liveworld.train.loop import train
from liveworld.world import load_world_model


def tiny_run(**train_overrides):
    run = preset("tiny")
    return dataclasses.replace(run, train=dataclasses.replace(run.train, **train_overrides))


def test_loss_decreases_on_a_tiny_overfit(tiny_world, tmp_path):
    run = tiny_run(steps=60, lr=3e-3, p_drop_action=0.0, p_drop_text=0.0, log_every_steps=1000, save_every_steps=1000)
    first = train(str(tiny_world / "data"), str(tmp_path / "a"), dataclasses.replace(run, train=dataclasses.replace(run.train, steps=1)),
                  str(tiny_world / "tok"), progress=False)
    last = train(str(tiny_world / "data"), str(tmp_path / "b"), run, str(tiny_world / "tok"), progress=False)
    assert last["loss"] < 0.8 * first["loss"], (first, last)


def test_checkpoint_round_trip_and_resume(tiny_world, tmp_path):
    run = tiny_run(steps=6, save_every_steps=3)
    full = train(str(tiny_world / "data"), str(tmp_path / "full"), run, str(tiny_world / "tok"), progress=False)
    half = train(str(tiny_world / "data"), str(tmp_path / "half"), run, str(tiny_world / "tok"), progress=False, max_steps=3)
    assert half["step"] == 3
    resumed = train(str(tiny_world / "data"), str(tmp_path / "half"), run, None, resume=True, progress=False)
    assert resumed["step"] == 6
    assert resumed["loss"] == pytest.approx(full["loss"], rel=1e-4)
    a, b = load_state(tmp_path / "full" / "checkpoint"), load_state(tmp_path / "half" / "checkpoint")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    model, meta = load_world_model(tmp_path / "full")  # a path alone rebuilds the model
    assert meta["world"]["world"] == "doom:deathmatch" and meta["step"] == 6
    assert (tmp_path / "full" / "checkpoint" / "tokenizers" / "video" / "model.safetensors").exists()
    with pytest.raises(LiveworldError, match="already holds a run"):
        train(str(tiny_world / "data"), str(tmp_path / "full"), run, str(tiny_world / "tok"), progress=False)
    with pytest.raises(LiveworldError, match="nothing to resume"):
        train(str(tiny_world / "data"), str(tmp_path / "none"), run, None, resume=True, progress=False)


def test_overrides():
    run = apply_overrides(preset("tiny"), ["--model.depth", "3", "--train.lr=1e-3", "--model.conv_mlp", "false"])
    assert run.model.depth == 3 and run.train.lr == 1e-3 and run.model.conv_mlp is False
    for bad, msg in ((["--model.nope", "1"], "has no field 'nope'"), (["--model.depth", "x"], "not a valid int"),
                     (["--optim.lr", "1"], "section must be"), (["depth", "3"], "overrides look like")):
        with pytest.raises(LiveworldError, match=msg):
            apply_overrides(preset("tiny"), bad)


DDP_SCRIPT = """
import dataclasses, json, sys, torch
torch.set_num_threads(1)
from liveworld.train.config import preset
from liveworld.train.loop import train
run = preset("tiny")
run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=3, batch_size=4, micro_batch=2, save_every_steps=100))
res = train(sys.argv[1], sys.argv[2], run, sys.argv[3], progress=False)
import torch.distributed as dist
if not dist.is_initialized() or dist.get_rank() == 0:
    print("RESULT", json.dumps(res))
"""


def test_ddp_two_processes_match_one(tiny_world, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    data, tok = str(tiny_world / "data"), str(tiny_world / "tok")
    one = subprocess.run([sys.executable, str(script), data, str(tmp_path / "one"), tok], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                          str(script), data, str(tmp_path / "two"), tok], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    r1 = json.loads(one.stdout.split("RESULT")[-1])
    r2 = json.loads(two.stdout.split("RESULT")[-1])
    assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-4)
    a, b = load_state(tmp_path / "one" / "checkpoint"), load_state(tmp_path / "two" / "checkpoint")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_tiny_preset_takes_its_latent_shapes_from_the_tokenizers_it_is_given(tiny_world, tmp_path):
    """The bundled tokenizers give 16 video channels and 4 audio tokens of 16; the tiny preset
    says 4, 2 and 4: training fits the model to the tokenizers instead of failing."""
    from liveworld.bundled import bundled_tokenizers_dir
    from liveworld.checkpoint import read_checkpoint_meta
    from liveworld.train.config import preset
    from liveworld.train.loop import train

    run = preset("tiny")
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=1))
    assert run.model.video_channels != 16
    train(str(tiny_world / "data"), str(tmp_path / "run"), run, str(bundled_tokenizers_dir()), progress=False)
    cfg = read_checkpoint_meta(tmp_path / "run" / "checkpoint", "world_model")["run"]["model"]
    assert (cfg["video_channels"], cfg["audio_tokens"], cfg["audio_channels"]) == (16, 4, 16)
    assert cfg["width"] == run.model.width  # the preset's own choices stay
