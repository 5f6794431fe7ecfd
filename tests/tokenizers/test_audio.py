import dataclasses
import math

import pytest
import torch

from liveworld.checkpoint import save_checkpoint
from liveworld.common import LiveworldError
from liveworld.tokenizers import load_tokenizer
from liveworld.tokenizers import audio as A

TINY = A.PRESETS["tiny"]
DOOM = A.fit_config(TINY, 22050, 1260, 2)  # 2 tics of 630 samples, stereo
ATARI = A.fit_config(TINY, 30720, 2048, 1)  # 4 emulator frames of 512 samples, mono


def _sounds(B: int, C: int, S: int, seed: int = 0) -> torch.Tensor:
    """Game-like test audio in [-1, 1]: a few tones plus a decaying noise burst at a random time."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(S) / 22050
    f = 200 + 2000 * torch.rand(B, C, 3, 1, generator=g)
    x = 0.2 * torch.sin(2 * math.pi * f * t + 6 * torch.rand(B, C, 3, 1, generator=g)).sum(2)
    start = torch.randint(0, S // 2, (B, 1, 1), generator=g)
    burst = (torch.arange(S) >= start) * torch.exp(-(torch.arange(S) - start).clamp_min(0) / 200.0)
    return (x + 0.3 * burst * torch.randn(B, C, S, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize("cfg", [DOOM, ATARI], ids=["doom-1260x2", "atari-2048x1"])
def test_shapes_round_trip(cfg):
    assert cfg.hop * cfg.tokens_per_frame >= cfg.samples_per_frame > cfg.hop * (cfg.tokens_per_frame - 1)
    model = A.AudioCodec(cfg).eval()
    x = _sounds(3, cfg.channels, cfg.samples_per_frame)
    z = model.encode(x)
    assert z.shape == (3, cfg.tokens_per_frame, cfg.latent_channels)
    y = model.decode(z)
    assert y.shape == x.shape and y.abs().max() <= 1
    recon, latents = model(x)
    assert recon.shape == x.shape and latents.shape == z.shape
    # any length works: padded up to the hop inside and cropped back
    odd = x[..., : cfg.samples_per_frame - 37]
    assert model(odd)[0].shape == odd.shape


def test_fit_config_picks_strides_that_cover_a_frame():
    assert DOOM.strides == (3, 3, 5, 7) and DOOM.hop * 4 == 1260  # no padding at all for Doom
    assert ATARI.hop * 4 == 2048 and max(ATARI.strides) <= 8
    assert (DOOM.sample_rate_hz, DOOM.samples_per_frame, DOOM.channels) == (22050, 1260, 2)


def test_tiny_codec_overfits_one_batch():
    torch.manual_seed(0)
    cfg = A.fit_config(TINY, 22050, 630, 1)
    model = A.AudioCodec(cfg)
    x = _sounds(4, 1, 630)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = A.codec_loss(model(x)[0], x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.4 * losses[0]  # ~0.25 in practice


def test_codec_loss_is_zero_for_a_perfect_reconstruction_and_finite_on_silence():
    x = _sounds(2, 2, 1260)
    assert A.codec_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    silent = torch.zeros(2, 2, 1260)
    assert torch.isfinite(A.codec_loss(silent, silent)) and torch.isfinite(A.codec_loss(x, silent))


def test_metrics_are_finite_on_silence():
    model = A.AudioCodec(DOOM).eval()
    m = A.audio_metrics(model, torch.zeros(8, 2, 1260, dtype=torch.int16))
    assert {"audio_snr_db", "audio_lsd_db", "audio_onset_recall", "audio_envelope_corr"} <= set(m)
    assert all(math.isfinite(v) for v in m.values())
    assert m["audio_onsets"] == 0 and m["audio_onset_recall"] == 1.0
    assert A.audio_metrics(_Stub(lambda z: z), torch.zeros(8, 1, 1260, dtype=torch.int16))["audio_envelope_corr"] == 1.0


class _Stub(torch.nn.Module):
    """A 'codec' whose latents are the waveform itself, then shifted or muted by `fx`."""

    def __init__(self, fx):
        super().__init__()
        self.cfg = dataclasses.replace(DOOM, channels=1)
        self.fx = fx

    def encode(self, x):
        return x

    def decode(self, z, length=None):
        return self.fx(z)


def _click_track(frames: int = 10, at: int = 4000) -> torch.Tensor:
    """int16 [frames, 1, 1260] of quiet noise with one loud click train starting at sample `at`."""
    g = torch.Generator().manual_seed(0)
    x = 0.001 * torch.randn(frames * 1260, generator=g)
    x[at : at + 600] += 0.5 * torch.randn(600, generator=g)
    return (x * 32767).round().to(torch.int16).reshape(frames, 1260)[:, None]


def test_onset_measure_finds_a_synthetic_click():
    val = _click_track()
    window = round(A.WINDOW_S * 22050)
    onsets = A.find_onsets(A.log_energy_db(A.to_float(val).permute(1, 0, 2).reshape(1, -1), window))
    assert onsets.tolist() == [4000 // window + 1] or onsets.tolist() == [4000 // window]

    perfect = A.audio_metrics(_Stub(lambda z: z), val)
    assert perfect["audio_onsets"] == 1 and perfect["audio_onset_recall"] == 1.0 and perfect["audio_onset_precision"] == 1.0
    assert perfect["audio_lsd_db"] == pytest.approx(0.0, abs=1e-4) and perfect["audio_envelope_corr"] == pytest.approx(1.0)
    assert perfect["audio_snr_db"] > 60 and perfect["audio_edge_jump_ratio"] == pytest.approx(1.0)

    muted = A.audio_metrics(_Stub(lambda z: 0.01 * z), val)  # quieter but every onset is still there
    assert muted["audio_onset_recall"] == 1.0 and muted["audio_snr_db"] < 1
    smeared = A.audio_metrics(_Stub(lambda z: z.mean(-1, keepdim=True).expand_as(z) + 0.001), val)  # no onsets left
    assert smeared["audio_onset_recall"] == 0.0 and smeared["audio_envelope_corr"] < 0.9


def test_saved_codec_loads_with_its_normalisation(tmp_path):
    torch.manual_seed(0)
    model = A.AudioCodec(DOOM)
    for _ in range(3):  # train-mode passes move the latent statistics away from their init
        model(_sounds(4, 2, 1260) * 0.3)
    model.eval()
    save_checkpoint(tmp_path / "audio", "audio_codec", DOOM, model.state_dict())
    back = load_tokenizer(tmp_path / "audio")
    x = _sounds(2, 2, 1260, seed=1)
    assert torch.allclose(back.encode(x), model.encode(x), atol=1e-6)
    assert back.cfg == DOOM


@pytest.mark.parametrize("call, match", [
    (lambda m: m.encode(torch.zeros(1, 2, 1260, dtype=torch.int16)), "to_float"),
    (lambda m: m.encode(torch.zeros(1, 1, 1260)), r"\[B, 2, S\]"),
    (lambda m: m.decode(torch.zeros(1, 4, 3)), "latents"),
    (lambda m: A.audio_metrics(m, torch.zeros(2, 2, 1260)), "int16"),
])
def test_bad_inputs_raise(call, match):
    with pytest.raises(LiveworldError, match=match):
        call(A.AudioCodec(DOOM))


def test_bad_configs_raise():
    with pytest.raises(LiveworldError, match="fit_config"):
        A.AudioCodec(dataclasses.replace(DOOM, samples_per_frame=4000))
    with pytest.raises(LiveworldError, match="empty"):
        A.fit_config(TINY, 22050, 0, 2)
    with pytest.raises(LiveworldError, match="tokens_per_frame"):
        A.fit_config(TINY, 22050, 10**6, 2)


def test_a_lapped_stream_joins_frames_without_clicks():
    """Frames decoded with small errors of their own (a gain and an offset per frame, as a codec
    makes them) click at every join when played alone; cross-faded over their shared samples
    they join as smoothly as the sound inside a frame. Decoded exactly, the lapped stream is the
    original sound sample for sample."""
    from liveworld.tokenizers.audio import AudioStream, edge_click_db, frame_windows

    S, O, T = 120, 30, 40
    t = torch.arange(T * S, dtype=torch.float32)
    x = torch.stack([0.3 * torch.sin(2 * torch.pi * t / 37.0), 0.2 * torch.sin(2 * torch.pi * t / 53.0)])  # [2, T * S]
    win = frame_windows(x, S, O)
    assert win.shape == (T, 2, S + 2 * O)
    assert torch.equal(win[3, :, O:O + S], x[:, 3 * S:4 * S])  # a window is its frame plus O of each side
    exact = AudioStream(S, O).play(win)
    assert torch.allclose(exact[:, S:], x[:, S - O:-O], atol=1e-6)  # the stream lags by O samples
    g = torch.Generator().manual_seed(0)
    err = 1 + 0.2 * torch.randn(T, 1, 1, generator=g), 0.05 * torch.randn(T, 1, 1, generator=g)
    bad = win * err[0] + err[1]
    alone = bad[:, :, O:O + S].permute(1, 0, 2).reshape(2, -1)
    lapped = AudioStream(S, O).play(bad)
    real = edge_click_db(x, S)
    assert abs(real) < 1.0
    assert edge_click_db(alone, S) > real + 6
    assert abs(edge_click_db(lapped, S, lag=O) - real) < 1.0


def test_a_lapped_codec_codes_windows_and_decodes_them_whole():
    from liveworld.tokenizers import audio as A

    cfg = A.fit_config(A.PRESETS["tiny-lapped"], 22050, 1260, 2)
    assert cfg.overlap == cfg.hop and cfg.window == 1260 + 2 * cfg.hop
    codec = A.AudioCodec(cfg).eval()
    x = torch.rand(3, 2, cfg.window) - 0.5
    z = codec.encode(x)
    assert z.shape == (3, cfg.tokens_per_frame, cfg.latent_channels)
    assert codec.decode(z).shape == (3, 2, cfg.window)
    with pytest.raises(LiveworldError, match="windows"):
        codec.encode(x[..., :1260])
