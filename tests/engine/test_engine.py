import numpy as np
import pytest
import torch

from liveworld.common import LiveworldError
from liveworld.engine.runner import WorldEngine
from liveworld.model.sampling import History, predict_next


def randomized_engine(run, steps=2) -> WorldEngine:
    eng = WorldEngine.load(run, device="cpu", steps=steps, threads=1)
    torch.manual_seed(1)
    with torch.no_grad():  # zero-initialised gates would make every comparison trivially equal
        for p in eng.model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.2)
    return eng


def test_cached_step_equals_full_context_forward(tiny_run):
    eng = randomized_engine(tiny_run, steps=2)
    s = eng.new_session(seed=3)
    assert len(s.cache) == eng.window  # the opening frames fill the window exactly
    k, W = s.start, eng.window
    st = eng.starts
    hist = History(st["video"][k][None, : W + 1], st["action"][k][None, : W + 1], st["audio"][k][None, : W + 1])
    action = eng.action_vector(["MOVE_FORWARD", "TURN_LEFT"])
    gen = torch.Generator().manual_seed(123)
    ref_v, ref_a = predict_next(eng.model, hist, action[None], st["text_ids"][k][None], st["text_valid"][k][None],
                                steps=2, generator=gen)
    s.generator = torch.Generator().manual_seed(123)
    v, a = eng.step_latent(s, action)
    assert torch.allclose(v, ref_v, atol=1e-4), (v - ref_v).abs().max()
    assert torch.allclose(a, ref_a, atol=1e-4)


def test_positions_and_memory_stay_bounded(tiny_run):
    eng = randomized_engine(tiny_run, steps=1)
    s = eng.new_session(seed=0)
    sizes = []
    for i in range(3 * eng.window + 5):
        frame, sound = eng.step(s, ["MOVE_FORWARD"] if i % 2 else [])
        sizes.append(s.cache.nbytes())
    assert frame.dtype == np.uint8 and frame.shape == (24, 32, 3)
    assert sound.dtype == np.int16 and sound.shape == (1260, 2)
    assert len(s.cache) == s.cache.capacity == eng.window
    assert len(set(sizes)) == 1  # allocated once
    assert s.frame_index == 3 * eng.window + 5


def test_text_changes_midstream(tiny_run):
    eng = randomized_engine(tiny_run, steps=1)
    s = eng.new_session(seed=0)
    for _ in range(2 * eng.window):
        eng.step(s, [])
    before = s.cache.frame_views()[0][0].clone()
    eng.step(s, [], text="a door opens")
    after = s.cache.frame_views()[0][0]
    assert s.text == "a door opens" and (before.shape != after.shape or not torch.equal(before, after))


def test_cached_stream_equals_reference_rollout_after_the_window_wraps(tiny_run):
    """Many frames past the window, with a ring that has wrapped several times, the engine's
    frames equal the reference sampler's, fed the engine's own frames as history."""
    eng = randomized_engine(tiny_run, steps=2)
    s = eng.new_session(seed=5)
    k, W = s.start, eng.window
    st = eng.starts
    hist = History(st["video"][k][None, : W + 1], st["action"][k][None, : W + 1], st["audio"][k][None, : W + 1])
    text, valid = st["text_ids"][k][None], st["text_valid"][k][None]
    s.generator = torch.Generator().manual_seed(9)
    gen = torch.Generator().manual_seed(9)
    for i in range(3 * W + 2):
        action = eng.action_vector(["MOVE_FORWARD"] if i % 3 else ["TURN_LEFT"])
        v, a = eng.step_latent(s, action)
        ref_v, ref_a = predict_next(eng.model, hist, action[None], text, valid, steps=2, generator=gen)
        assert torch.allclose(v, ref_v, atol=1e-4), (i, (v - ref_v).abs().max())
        hist = hist.push(ref_v, action[None], ref_a, W)


def test_guided_engine_costs_one_pass_per_step(tiny_run):
    eng = randomized_engine(tiny_run, steps=2)
    eng.guidance = 1.5
    s = eng.new_session(seed=0)
    eng.step(s, ["MOVE_FORWARD"])  # from the second frame on, each step also writes the frame before
    before = eng.nfe
    eng.step(s, ["MOVE_FORWARD"])
    assert eng.nfe - before == eng.nfe_per_frame == 3
    assert eng.passes_per_frame == 2


def test_unknown_action_is_named(tiny_run):
    eng = randomized_engine(tiny_run)
    s = eng.new_session()
    with pytest.raises(LiveworldError, match="unknown action"):
        eng.step(s, ["JUMP"])
