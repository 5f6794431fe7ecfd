import dataclasses
import torch

from liveworld.model.omni import PRESETS, FrameInputs, OmniWorldModel
from liveworld.model.rope import apply_rope, rope_tables


def tiny_inputs(B=2, F=3, cfg=PRESETS["tiny"], grid=(2, 3), seed=0):
    g = torch.Generator().manual_seed(seed)

    def seg():
        return FrameInputs(
            video=torch.randn(B, F, cfg.video_channels, *grid, generator=g),
            video_prev=torch.randn(B, F, cfg.video_channels, *grid, generator=g),
            action=torch.randint(0, 2, (B, F, cfg.action_dim), generator=g).float(),
            t=torch.rand(B, F, generator=g), d=torch.zeros(B, F),
            audio=torch.randn(B, F, cfg.audio_tokens, cfg.audio_channels, generator=g),
            audio_prev=torch.randn(B, F, cfg.audio_tokens, cfg.audio_channels, generator=g))
    text = torch.randint(0, cfg.text_vocab, (B, cfg.text_len), generator=g)
    return text, seg(), seg()


def randomized_model(cfg=PRESETS["tiny"]):
    torch.manual_seed(0)
    m = OmniWorldModel(cfg)
    with torch.no_grad():  # zero-initialised gates would hide every dependency
        for p in m.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.2)
    return m.eval()


def test_shapes_at_two_aspect_ratios():
    m = randomized_model()
    for grid in ((2, 3), (4, 2)):
        text, clean, noisy = tiny_inputs(grid=grid)
        v, a = m(text, clean, noisy)
        assert v.shape == noisy.video.shape and a.shape == noisy.audio.shape
        assert torch.isfinite(v).all()


def test_a_frame_never_sees_a_later_one():
    m = randomized_model()
    text, clean, noisy = tiny_inputs()
    v0, a0 = m(text, clean, noisy)
    clean.video = clean.video.clone()
    clean.video[:, 1] += 5.0  # change clean frame 1
    v1, _ = m(text, clean, noisy)
    assert torch.allclose(v0[:, :2], v1[:, :2], atol=1e-5), "noisy frames 0 and 1 must not see clean frame 1"
    assert not torch.allclose(v0[:, 2], v1[:, 2], atol=1e-3), "noisy frame 2 must see clean frame 1"
    noisy.video = noisy.video.clone()
    noisy.video[:, 0] += 5.0
    v2, _ = m(text, clean, noisy)
    assert torch.allclose(v1[:, 1:], v2[:, 1:], atol=1e-5), "noisy frames never see each other"


def test_action_conditions_its_frame():
    m = randomized_model()
    text, clean, noisy = tiny_inputs()
    v0, _ = m(text, clean, noisy)
    noisy.action = noisy.action.clone()
    noisy.action[:, 2] = 1 - noisy.action[:, 2]
    clean.action = clean.action.clone()
    clean.action[:, 2] = 1 - clean.action[:, 2]
    v1, _ = m(text, clean, noisy)
    assert torch.allclose(v0[:, :2], v1[:, :2], atol=1e-5)
    assert not torch.allclose(v0[:, 2], v1[:, 2], atol=1e-3)


def test_padded_text_is_invisible():
    m = randomized_model()
    text, clean, noisy = tiny_inputs()
    valid = torch.tensor([[True, True, False, False]] * 2)
    v0, _ = m(text, clean, noisy, text_valid=valid)
    text2 = text.clone()
    text2[:, 2:] = (text2[:, 2:] + 7) % 300
    v1, _ = m(text2, clean, noisy, text_valid=valid)
    assert torch.allclose(v0, v1, atol=1e-5)
    text2[:, 0] = (text2[:, 0] + 7) % 300
    v2, _ = m(text2, clean, noisy, text_valid=valid)
    assert not torch.allclose(v0, v2, atol=1e-4)


def test_rope_is_relative_in_frame():
    """Scores depend on frame differences only: shifting every frame keeps them (bounded positions)."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 5, 16), torch.randn(1, 1, 5, 16)
    tab = {"frame": torch.tensor([0, 1, 2, 3, 4]), "row": torch.tensor([0, 1, 1, 2, 2]), "col": torch.tensor([0, 1, 2, 1, 2])}
    shifted = {**tab, "frame": tab["frame"] + 1000}
    s1 = apply_rope(q, *rope_tables(tab, (4, 6, 6))) @ apply_rope(k, *rope_tables(tab, (4, 6, 6))).transpose(-1, -2)
    s2 = apply_rope(q, *rope_tables(shifted, (4, 6, 6))) @ apply_rope(k, *rope_tables(shifted, (4, 6, 6))).transpose(-1, -2)
    assert torch.allclose(s1, s2, atol=1e-3)
    moved = {**tab, "row": tab["row"] + torch.tensor([0, 0, 0, 0, 1])}
    s3 = apply_rope(q, *rope_tables(moved, (4, 6, 6))) @ apply_rope(k, *rope_tables(moved, (4, 6, 6))).transpose(-1, -2)
    assert not torch.allclose(s1, s3, atol=1e-3)


def test_trains_and_samples_at_two_aspect_ratios():
    from liveworld.model.sampling import History, predict_next
    from liveworld.train.config import TrainConfig
    from liveworld.train.objective import world_loss

    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    model = OmniWorldModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    tcfg = TrainConfig(p_drop_action=0.0, p_drop_text=0.0, p_shortcut=0.0)
    gen = torch.Generator().manual_seed(0)

    def clip(grid):
        # a bright square that moves one cell per frame in the direction given by the action
        B, F = 4, cfg.frames + 1
        video = torch.full((B, F, cfg.video_channels, *grid), -1.0)
        action = torch.zeros(B, F, cfg.action_dim)
        for b in range(B):
            right = b % 2
            action[b, :, 0] = right
            for f in range(F):
                c = (f if right else -f) % grid[1]
                video[b, f, :, 0, c] = 1.0
        return {"video": video, "action": action, "audio": torch.zeros(B, F, cfg.audio_tokens, cfg.audio_channels),
                "text": torch.zeros(B, cfg.text_len, dtype=torch.long), "text_valid": torch.zeros(B, cfg.text_len, dtype=torch.bool)}

    grids = [(2, 4), (4, 2)]
    losses = {g: [] for g in grids}
    for step in range(120):
        g = grids[step % 2]
        loss, _ = world_loss(model, clip(g), cfg, tcfg, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[g].append(loss.item())
    for g in grids:
        assert sum(losses[g][-10:]) < 0.6 * sum(losses[g][:10]), (g, losses[g][:3], losses[g][-3:])
        c = clip(g)
        hist = History(c["video"][:, :3], c["action"][:, :3], c["audio"][:, :3])
        v, a = predict_next(model.eval(), hist, c["action"][:, 3], c["text"], c["text_valid"], steps=2, generator=gen)
        assert v.shape == (4, cfg.video_channels, *g) and torch.isfinite(v).all()
        model.train()


def test_an_untrained_delta_head_returns_the_previous_frame():
    """The copy prior: before any training, one step from noise gives back the last frame."""
    from liveworld.model.sampling import History, predict_next

    cfg = PRESETS["tiny"]
    model = OmniWorldModel(cfg).eval()
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, cfg.video_channels, 2, 3, generator=g)
    audio = torch.randn(2, 3, cfg.audio_tokens, cfg.audio_channels, generator=g)
    action = torch.zeros(2, 3, cfg.action_dim)
    text = torch.zeros(2, cfg.text_len, dtype=torch.long)
    for steps in (1, 2):
        v, a = predict_next(model, History(video, action, audio), action[:, -1], text, text.bool(), steps=steps, generator=g)
        assert torch.allclose(v, video[:, -1], atol=1e-6) and torch.allclose(a, audio[:, -1], atol=1e-6)
    velocity = OmniWorldModel(dataclasses.replace(cfg, output="velocity")).eval()
    v, _ = predict_next(velocity, History(video, action, audio), action[:, -1], text, text.bool(), steps=1, generator=g)
    assert not torch.allclose(v, video[:, -1], atol=1e-2)  # the old head returns its input noise


def test_gelu_without_gradients_is_torchs_tanh_gelu():
    import torch.nn.functional as F

    from liveworld.model.omni import gelu_tanh

    x = torch.linspace(-8, 8, 4001)
    with torch.no_grad():
        fast = gelu_tanh(x)
    assert (fast - F.gelu(x, approximate="tanh")).abs().max() < 1e-5
    y = x.clone().requires_grad_(True)
    gelu_tanh(y).sum().backward()  # the training path keeps torch's kernel and its gradient
    assert y.grad is not None and torch.isfinite(y.grad).all()
