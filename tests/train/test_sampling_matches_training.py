"""Sampling feeds the model what training fed it: the (t, d) of every solver pass, the context's
(t, d), guidance, and the positions and visibility of every token."""

import dataclasses

import pytest
import torch

from liveworld.engine.runner import WorldEngine
from liveworld.model.layout import Layout
from liveworld.model.omni import PRESETS, OmniWorldModel
from liveworld.model.sampling import History, predict_next
from liveworld.train.config import preset
from liveworld.train.objective import context_times, flow_times, world_loss


def recorded_passes(model, fn):
    """Runs fn() and returns the (t, d) of every segment the model was given, per method."""
    seen = {"cached": [], "full": []}
    cached, full = model.forward_cached, model.forward

    def rec_cached(seg, *a, **k):  # every frame of the segment (the engine fuses a cache write with a step)
        seen["cached"].extend((round(float(t), 6), round(float(d), 6)) for t, d in zip(seg.t[0], seg.d[0]))
        return cached(seg, *a, **k)

    def rec_full(text, clean, noisy, *a, **k):
        seen["full"].append(((clean.t, clean.d), (round(float(noisy.t.flatten()[0]), 6), round(float(noisy.d.flatten()[0]), 6))))
        return full(text, clean, noisy, *a, **k)

    model.forward_cached, model.forward = rec_cached, rec_full
    try:
        fn()
    finally:
        del model.forward_cached, model.forward
    return seen


def trained_pairs(mcfg, draws: int = 20000) -> set[tuple[float, float]]:
    """Every (t, d) the objective feeds the noisy stream that lies on a sampler's grid."""
    t, d, _ = flow_times(draws, 1, mcfg, preset("tiny").train, torch.Generator().manual_seed(0))
    return {(round(float(a), 6), round(float(b), 6)) for a, b in zip(t.flatten(), d.flatten())}


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_engine_feeds_trained_t_and_d(tiny_run, steps):
    eng = WorldEngine.load(tiny_run, device="cpu", steps=steps, threads=1)
    s = eng.new_session(seed=0)
    seen = recorded_passes(eng.model, lambda: [eng.step(s, ["MOVE_FORWARD"]) for _ in range(3)])
    solver_passes = [p for p in seen["cached"] if p != (0.0, 0.0)]
    writes = [p for p in seen["cached"] if p == (0.0, 0.0)]
    # and the cache write of every frame but the newest (the next step's first pass writes it), at t = d = 0
    assert len(solver_passes) == 3 * steps and len(writes) == 2
    assert {1.0} <= {t for t, _ in solver_passes}  # a 1-step sampler evaluates t = 1 ...
    missing = set(solver_passes) - trained_pairs(eng.model.cfg)
    assert not missing, f"sampling feeds (t, d) that training never fed: {sorted(missing)}"


def test_reference_sampler_feeds_the_engines_t_and_d(tiny_run):
    eng = WorldEngine.load(tiny_run, device="cpu", steps=2, threads=1)
    st, W = eng.starts, eng.window
    hist = History(st["video"][0][None, : W + 1], st["action"][0][None, : W + 1], st["audio"][0][None, : W + 1])
    seen = recorded_passes(eng.model, lambda: predict_next(eng.model, hist, st["action"][0][None, W], st["text_ids"][0][None],
                                                           st["text_valid"][0][None], steps=2))
    assert [p for _, p in seen["full"]] == [(1.0, 0.5), (0.5, 0.5)]
    for (t_ctx, d_ctx), _ in seen["full"]:  # context frames at t = d = 0, as training's clean clips
        assert t_ctx.abs().max() == 0 and d_ctx.abs().max() == 0


def test_training_feeds_clean_context_and_the_one_step_point():
    cfg = preset("tiny").train
    t_ctx = context_times(4000, 4, cfg, torch.Generator().manual_seed(0))
    assert (t_ctx == 0).all(-1).float().mean() > 0.3  # clean context (what sampling feeds) is common
    mcfg = PRESETS["tiny"]
    pairs = trained_pairs(mcfg)
    for steps in (1, 2, 4):
        for i in range(steps):
            assert (round(1 - i / steps, 6), round(1 / steps, 6)) in pairs
    # a model trained without step sizes is fed d = 0 at sampling, as in training
    plain = dataclasses.replace(mcfg, shortcut_steps=0)
    _, d, _ = flow_times(100, 2, plain, cfg, torch.Generator().manual_seed(0))
    assert (d == 0).all()


def test_positions_and_visibility_of_the_sampled_frame_match_training():
    """The frame a sampler generates after W context frames sits where training's last noisy
    frame sits, and sees the same keys at the same positions."""
    W, grid = 3, (2, 3)
    train = Layout(4, 2, grid, W + 1, W + 1)
    samp = Layout(4, 2, grid, W, 1, noisy_frame_offset=W)
    N = train.tokens_per_frame

    def seen_keys(lay, query_row):
        tab, mask = lay.token_table(), lay.attention_mask()
        keys = mask[query_row].nonzero()[:, 0]
        return sorted((int(tab["segment"][k]), int(tab["frame"][k]), int(tab["row"][k]), int(tab["col"][k])) for k in keys)

    q_train = train.length - N  # first token of the last noisy frame
    q_samp = samp.length - N
    assert seen_keys(train, q_train) == seen_keys(samp, q_samp)
    for key in ("frame", "row", "col"):
        assert torch.equal(train.token_table()[key][q_train:], samp.token_table()[key][q_samp:])


def test_no_guidance_is_the_input_training_gave_unguided_clips():
    model = OmniWorldModel(PRESETS["tiny"])
    torch.nn.init.normal_(model.w_embed.weight)
    assert torch.allclose(model.guidance_embed(None, 2, "cpu"), model.guidance_embed(torch.ones(2, 2), 2, "cpu"))
    assert not torch.allclose(model.guidance_embed(None, 2, "cpu"), model.guidance_embed(torch.full((2, 2), 2.0), 2, "cpu"))


def _recording(model):
    """model.forward wrapped to keep every (clean, noisy) pair it is given, and the layouts."""
    seen, layouts = [], []
    forward, layout = model.forward, model.layout

    def rec(text, clean, noisy, *a, **k):
        seen.append((clean, noisy))
        return forward(text, clean, noisy, *a, **k)

    def rec_layout(*a, **k):
        lay = layout(*a, **k)
        layouts.append(lay)
        return lay

    model.forward, model.layout = rec, rec_layout
    return seen, layouts


def test_a_stacked_model_samples_from_the_inputs_training_gave_it():
    """A model that attends to no frame (frames = 1, K stacked latents): the stack, the context
    level, t, d and the positions and visibility of each predicted frame's tokens are, at
    sampling, what each of training's predicted frames got (training's context noise off)."""
    run = preset("tiny-stack")
    mcfg = run.model
    tcfg = dataclasses.replace(run.train, p_ctx_noise=0.0, p_text_start=0.0, p_drop_action=0.0, p_drop_text=0.0, p_t_one=1.0)
    K, P, (h, w) = mcfg.stack, tcfg.clip_targets, (3, 4)
    torch.manual_seed(0)
    model = OmniWorldModel(mcfg)
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(1, K + P, mcfg.video_channels, h, w, generator=gen)
    action = (torch.rand(1, K + P, mcfg.action_dim, generator=gen) < 0.5).float()
    audio = torch.randn(1, K + P, mcfg.audio_tokens, mcfg.audio_channels, generator=gen)
    text = torch.randint(0, mcfg.text_vocab, (1, mcfg.text_len), generator=gen)
    valid = torch.ones(1, mcfg.text_len, dtype=torch.bool)
    clip = {"video": video, "action": action, "audio": audio, "text": text, "text_valid": valid,
            "prompt": text, "prompt_valid": valid}
    seen, layouts = _recording(model)
    world_loss(model, clip, mcfg, tcfg, torch.Generator().manual_seed(1))
    (clean_tr, noisy_tr), lay_tr = seen[-1], layouts[-1]
    assert clean_tr.frames == 0 and noisy_tr.frames == P
    for j in range(P):  # the j-th predicted frame, sampled from a history of its K real frames before it
        hist = History.start(video[:, j:j + K], action[:, j:j + K], audio[:, j:j + K], stack=K)
        seen.clear(), layouts.clear()
        predict_next(model, hist, action[:, K + j], text, valid, steps=1)
        (clean_s, noisy_s), lay_s = seen[0], layouts[0]
        assert clean_s.frames == 0
        assert torch.equal(noisy_s.video_prev[:, 0], noisy_tr.video_prev[:, j])  # the stack, oldest first
        assert torch.equal(noisy_s.audio_prev[:, 0], noisy_tr.audio_prev[:, j])
        assert torch.equal(noisy_s.action[:, 0], noisy_tr.action[:, j])
        assert float(noisy_s.t) == float(noisy_tr.t[0, j]) == 1.0 and float(noisy_s.d) == float(noisy_tr.d[0, j])
        level = noisy_tr.context_t[0, j]
        assert noisy_s.context_t is None and float(level) == 0.0  # clean context: level 0, what None embeds
        N = lay_s.tokens_per_frame
        tab_tr, tab_s = lay_tr.token_table(), lay_s.token_table()
        rows = slice(lay_tr.frames_start + j * N, lay_tr.frames_start + (j + 1) * N)
        for key in ("frame", "row", "col", "segment"):
            assert torch.equal(tab_tr[key][rows], tab_s[key][lay_s.frames_start:])
        seen_tr = lay_tr.attention_mask()[rows][:, torch.cat([torch.arange(lay_tr.text_len), torch.arange(rows.start, rows.stop)])]
        assert torch.equal(seen_tr, lay_s.attention_mask()[lay_s.frames_start:])  # the text and its own frame
        assert lay_tr.attention_mask()[rows].sum() == seen_tr.sum()  # ... and nothing else (no other frame)
