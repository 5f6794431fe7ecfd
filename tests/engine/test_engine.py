import numpy as np
import pytest
import torch

from liveworld.common import LiveworldError
from liveworld.engine.runner import WorldEngine
from liveworld.model.sampling import History, predict_next


def randomize(model, seed: int = 1):
    """Every weight moved well away from its (mostly zero-gated) start: a model whose attention
    and MLP branches all matter, so that a wrong key, position or mask shows."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def randomized_engine(run, steps=2) -> WorldEngine:
    eng = WorldEngine.load(run, device="cpu", steps=steps, threads=1)
    randomize(eng.model)
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


def memory_engine(run, rule="recency", stride=1, units=3) -> WorldEngine:
    import dataclasses

    from liveworld.model.omni import OmniWorldModel

    eng = WorldEngine.load(run, device="cpu", steps=2, threads=1)
    cfg = dataclasses.replace(eng.model.cfg, memory_units=units, memory_patch=1, memory_rule=rule, memory_stride=stride)
    eng.model, eng.memory = randomize(OmniWorldModel(cfg).eval(), seed=2), True
    return eng


@pytest.mark.parametrize("memory", [None, ("recency", 1), ("novelty", 2)])
def test_fused_cache_writes_equal_separate_ones_far_past_the_window(tiny_run, memory):
    """The fused pass (a frame's cache write inside the next frame's first step, with its masks,
    two texts, evictions and memory units) gives the frames of a separate write pass per frame,
    many frames after the window and a small bank have filled and wrapped."""
    eng = memory_engine(tiny_run, *memory) if memory else randomized_engine(tiny_run)
    streams = []
    for fuse in (True, False):
        eng.fuse = fuse
        s = eng.new_session(seed=5)
        s.generator = torch.Generator().manual_seed(9)
        frames = [eng.step_latent(s, eng.action_vector(["MOVE_FORWARD"] if i % 3 else ["TURN_LEFT"]))[0]
                  for i in range(4 * eng.window + 6)]
        streams.append(torch.stack(frames))
        if memory:
            assert len(s.memory) == s.cache.memory_count == 3  # the bank filled, then kept its size
    assert torch.allclose(streams[0], streams[1], atol=1e-4), (streams[0] - streams[1]).abs().max()


def test_engine_with_memory_equals_the_reference_while_the_window_holds(tiny_run):
    """With a bank already holding units (the reference's History and the engine's session
    given the same ones), the engine's next frame equals the full recomputation's."""
    from liveworld.model.memory import MemoryBank, summarize

    eng = memory_engine(tiny_run)
    s = eng.new_session(seed=5)
    k, W = s.start, eng.window
    st = eng.starts
    C, h, w = st["video"].shape[2:]
    bank = MemoryBank(1, 3, h * w, C)
    for number, frame in ((-7, st["video"][k][0] * 0.5), (-4, st["video"][k][1].flip(-1))):  # two older frames
        units = summarize(frame[None], 1)
        slot = int(bank.add(number, units)[0])
        s.memory.add(number, units)
        s.cache.write_unit(slot, eng.model.memory_kv(units, number, eng.grid))
    hist = History(st["video"][k][None, : W + 1], st["action"][k][None, : W + 1], st["audio"][k][None, : W + 1], memory=bank)
    action = eng.action_vector(["MOVE_FORWARD"])
    ref_v, ref_a = predict_next(eng.model, hist, action[None], st["text_ids"][k][None], st["text_valid"][k][None],
                                steps=2, generator=torch.Generator().manual_seed(4))
    s.generator = torch.Generator().manual_seed(4)
    v, a = eng.step_latent(s, action)
    assert torch.allclose(v, ref_v, atol=1e-4), (v - ref_v).abs().max()
    no_memory = predict_next(eng.model, History(hist.video, hist.action, hist.audio), action[None], st["text_ids"][k][None],
                             st["text_valid"][k][None], steps=2, generator=torch.Generator().manual_seed(4))[0]
    assert (no_memory - ref_v).abs().max() > 1e-3  # and the memory mattered


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


def test_sparse_memory_reads_equal_in_engine_and_reference_and_differ_from_dense(tiny_run):
    """top-k reads: the engine gathers the chosen units, the reference masks the others; the
    same frames. With k below the bank's size they differ from reading every unit."""
    eng = memory_engine(tiny_run, units=4)
    streams = {}
    for top_k, fuse in ((2, True), (2, False), (0, True)):
        eng.model.read_top_k, eng.fuse = top_k, fuse
        s = eng.new_session(seed=5)
        s.generator = torch.Generator().manual_seed(9)
        streams[(top_k, fuse)] = torch.stack([eng.step_latent(s, eng.action_vector(["MOVE_FORWARD"]))[0]
                                              for _ in range(4 * eng.window + 8)])
    assert torch.allclose(streams[(2, True)], streams[(2, False)], atol=1e-4)
    assert (streams[(2, True)] - streams[(0, True)]).abs().max() > 1e-3


@pytest.mark.parametrize("guidance", [1.0, 1.5])
def test_a_batch_of_streams_gives_each_stream_what_it_gets_alone(tiny_run, guidance):
    """step_batch steps sessions in different states (one still filling its window, others at
    different frame numbers, other texts, other actions) in batched passes; each gets the frames
    it gets when stepped alone: its own noise, RoPE positions, masks and cache rows."""
    eng = randomized_engine(tiny_run)
    eng.guidance = guidance
    acts = [["MOVE_FORWARD"], ["TURN_LEFT"], [], ["ATTACK", "TURN_RIGHT"]]

    def sessions():
        out = [eng.new_session(seed=i) for i in range(4)]
        eng.set_text(out[3], "a red door")
        return out

    alone, batched = sessions(), sessions()
    for group in (alone, batched):  # streams 1-3 run ahead before the batch starts, by different amounts
        for s, ahead in zip(group[1:], (eng.window + 2, 3, 3)):
            for _ in range(ahead):
                eng.step_latent(s, eng.action_vector([]))
    sizes = []
    forward = eng.model.forward_cached

    def counting(seg, *args, **kw):
        sizes.append(seg.video.shape[0])
        return forward(seg, *args, **kw)

    for f in range(2 * eng.window + 3):
        eng.model.forward_cached = counting
        got = eng.step_latent_batch(batched, [eng.action_vector(a) for a in acts])
        eng.model.forward_cached = forward
        for b, s in enumerate(alone):
            want = eng.step_latent(s, eng.action_vector(acts[b]))[0]
            assert torch.allclose(got[b][0], want, atol=1e-4), (f, b, (got[b][0] - want).abs().max())
    assert [s.frame_index for s in batched] == [s.frame_index for s in alone]
    assert max(sizes) == 4 and min(sizes) == 1  # streams share passes once their windows are full (other texts too)
    frames = eng.step_batch(batched, acts)
    assert len(frames) == 4 and frames[0][0].shape == eng.step(alone[0], acts[0])[0].shape
