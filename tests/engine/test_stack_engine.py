"""The engine for a model that attends to no frame (frames = 1) and stacks K latents: its
stream is the reference sampler's, frame after frame, with no cache write at all."""

import torch

from liveworld.engine.runner import WorldEngine
from liveworld.model.sampling import History, predict_next

from tests.engine.test_engine import randomize


def test_stacked_stream_equals_the_reference_rollout(tiny_stack_run):
    eng = WorldEngine.load(tiny_stack_run, device="cpu", steps=2, threads=1)
    randomize(eng.model)
    K = eng.stack
    assert eng.window == 0 and K > 1 and not eng.fuse
    s = eng.new_session(seed=3)
    k, st = s.start, eng.starts
    hist = History.start(st["video"][k][None, :K], st["action"][k][None, :K], st["audio"][k][None, :K], stack=K)
    text, valid = st["text_ids"][k][None], st["text_valid"][k][None]
    acts = [["MOVE_FORWARD"], ["TURN_LEFT"], [], ["ATTACK"], ["TURN_RIGHT", "MOVE_FORWARD"]] * 2
    s.generator = torch.Generator().manual_seed(7)
    ref_gen = torch.Generator().manual_seed(7)
    nfe0 = eng.nfe
    for names in acts:  # past K frames: every stacked latent is a generated one
        a = eng.action_vector(names)
        v, au = eng.step_latent(s, a)
        rv, ra = predict_next(eng.model, hist, a[None], text, valid, steps=2, generator=ref_gen)
        assert torch.allclose(v, rv, rtol=1e-5, atol=1e-4), (v - rv).abs().max()
        assert torch.allclose(au, ra, rtol=1e-5, atol=1e-4)
        hist = hist.push(rv, a[None], ra, window=0)
    assert eng.nfe - nfe0 == 2 * len(acts)  # the solver's passes only: nothing is cached
    assert len(s.cache) == 0


def test_stacked_batch_equals_streams_alone(tiny_stack_run):
    eng = WorldEngine.load(tiny_stack_run, device="cpu", steps=1, threads=1)
    randomize(eng.model)
    alone = [eng.new_session(seed=i) for i in range(3)]
    batched = [eng.new_session(seed=i) for i in range(3)]
    eng.set_text(batched[2], "a red door")
    eng.set_text(alone[2], "a red door")
    acts = [["MOVE_FORWARD"], ["TURN_LEFT"], []]
    for _ in range(5):
        got = eng.step_latent_batch(batched, [eng.action_vector(a) for a in acts])
        for b, s in enumerate(alone):
            want = eng.step_latent(s, eng.action_vector(acts[b]))[0]
            assert torch.allclose(got[b][0], want, rtol=1e-5, atol=1e-4)


def test_a_text_start_stacks_blank_frames(tiny_stack_run):
    eng = WorldEngine.load(tiny_stack_run, device="cpu", steps=1, threads=1)
    s = eng.new_session(seed=0, prompt="a dark room")
    assert s.last_video.shape[1] == eng.stack * eng.model.cfg.video_channels and s.last_video.abs().max() == 0
    frame, _ = eng.step(s, ["MOVE_FORWARD"])
    assert frame.shape == (*eng.frame_size[::-1], 3)
    assert s.last_video[:, -eng.model.cfg.video_channels:].abs().max() > 0  # the new frame joined the stack
