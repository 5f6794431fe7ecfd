"""`liveworld export`: a run becomes a self-contained world that plays, and the flow steps it is
exported with become what play, eval and the engine use unless told otherwise."""

import json

import pytest
import torch

from liveworld.common import LiveworldError
from liveworld.engine.runner import WorldEngine
from liveworld.train.export import export_world
from liveworld.world import load_world_model, sampling_steps


def test_an_exported_world_carries_its_sampling_steps(tiny_stack_run, tmp_path):
    out = export_world(tiny_stack_run, tmp_path / "world", steps=3)
    meta = json.loads((out / "config.json").read_text())
    assert meta["sampling_steps"] == 3
    assert not any(p.name.startswith("train_state") for p in out.iterdir())
    model, meta = load_world_model(out)
    ref, _ = load_world_model(tiny_stack_run)
    for (n, p), q in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-2, rtol=1e-2), n  # fp16 on disk, fp32 again on load
    assert sampling_steps(meta) == 3 and sampling_steps(meta, 2) == 2
    assert WorldEngine.load(out, threads=1).steps == 3
    assert WorldEngine.load(out, threads=1, steps=1).steps == 1
    assert WorldEngine.load(tiny_stack_run, threads=1).steps == 1  # a run names none: one step


def test_export_refuses_zero_steps(tiny_stack_run, tmp_path):
    with pytest.raises(LiveworldError, match="--steps"):
        export_world(tiny_stack_run, tmp_path / "world", steps=0)
