"""An engine on each world of a checkpoint of several, and streams opened by text alone."""

import numpy as np
import pytest
import torch

from liveworld.common import LiveworldError
from liveworld.engine.runner import WorldEngine
from liveworld.model.sampling import History, predict_next
from liveworld.world import load_world_model

from tests.engine.test_engine import randomize


@pytest.mark.parametrize("world,size,action", [("doom:deathmatch", (32, 24), ["MOVE_FORWARD", "ATTACK"]),
                                               ("minigrid:Empty-8x8-v0", (24, 24), ["forward"])])
def test_each_world_streams_at_its_own_shape_with_its_own_keys(tiny_worlds, world, size, action):
    run, _, _ = tiny_worlds
    eng = WorldEngine.load(run, device="cpu", threads=1, world=world)
    assert eng.world == world and eng.frame_size == size
    s = eng.new_session(seed=1)
    for _ in range(3):
        frame, sound = eng.step(s, action)
    assert frame.shape == (size[1], size[0], 3)
    assert sound.shape == (1260, 2)  # one frame of the shared codec's sound, a silent world's too
    v = eng.action_vector(action)
    assert v.shape == (15,) and v.sum() == len(action)  # the union's width, the world's own columns
    with pytest.raises(LiveworldError, match="actions are"):
        eng.action_vector(["fire"])


def test_an_unknown_world_is_named(tiny_worlds):
    run, _, _ = tiny_worlds
    with pytest.raises(LiveworldError, match="minigrid:Empty-8x8-v0"):
        WorldEngine.load(run, device="cpu", threads=1, world="atari:Pong")


def test_a_prompt_start_is_the_reference_sampler_from_a_blank_frame(tiny_worlds):
    """The first frame of `new_session(prompt=...)` is `predict_next` from a History whose only
    frame is blank (zero latents), no context, the prompt as text: what training's text-start
    clips feed (tests/train/test_worlds.py)."""
    run, _, _ = tiny_worlds
    model, meta = load_world_model(run, torch.device("cpu"))
    randomize(model)
    eng = WorldEngine.for_world(model, meta, "minigrid:Empty-8x8-v0", torch.device("cpu"), steps=2)
    prompt = "get to the green goal square"
    s = eng.new_session(seed=0, prompt=prompt)
    assert len(s.cache) == 0 and s.text == prompt
    action = eng.action_vector(["forward"])
    C, (h, w) = model.cfg.video_channels, eng.grid
    hist = History.start(torch.zeros(1, C, h, w), torch.zeros(1, model.cfg.action_dim),
                         torch.zeros(1, model.cfg.audio_tokens, model.cfg.audio_channels))
    ids = torch.tensor([eng.tok.text.encode(prompt)[: model.cfg.text_len]])
    ref_v, ref_a = predict_next(model, hist, action[None], ids, torch.ones_like(ids, dtype=torch.bool), steps=2,
                                generator=torch.Generator().manual_seed(7))
    s.generator = torch.Generator().manual_seed(7)
    v, a = eng.step_latent(s, action)
    assert torch.allclose(v, ref_v, atol=1e-4) and torch.allclose(a, ref_a, atol=1e-4)
    frame, _ = eng.step(s, ["left"])  # and it streams on from there
    assert frame.shape == (24, 24, 3) and np.isfinite(frame).all()
