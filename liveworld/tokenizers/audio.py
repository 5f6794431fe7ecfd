"""Per-frame audio codec: one frame's sound <-> a few continuous latent tokens.

Shape legend: B batch, C audio channels (2 for Doom, 1 for Atari), S samples per frame (1260 for
Doom: 2 tics of 630 samples at 22,050 Hz), N latent tokens per frame, D latent channels.
`encode`: float [B, C, S] in [-1, 1] -> latents [B, N, D], normalised to zero mean and unit
variance per channel (a BatchNorm without affine parameters whose running statistics are saved
with the weights), so a flow model can use them as they are. `decode` is the inverse,
[B, N, D] -> [B, C, S] in [-1, 1].

The network is a small SEANet-style 1-D conv encoder/decoder (EnCodec, Defossez et al. 2022,
without the quantiser and the LSTM): a residual block then a strided conv per level, mirrored by
transposed convs. The strides are chosen by `fit_config` so that their product (the hop) times
N covers S with as little padding as possible; S is zero-padded up to N * hop inside and cropped
back. Each frame is coded on its own, so the world model can generate sound one frame at a time.

Frames overlap (`overlap_tokens` k > 0, a lapped codec): frame t's tokens are encoded from its
samples plus O = k * hop samples of each neighbour (the encoder sees [tS - O, (t+1)S + O]), and
decode to that whole window, S + 2O samples. Played back (`AudioStream`), consecutive windows
are cross-faded over the 2O samples they share, so frames join without a click at the frame
rate and the sound lags the picture by O samples (14 ms for Doom). Without overlap (the first
codecs) each frame's S samples are played as decoded, and its edges may click; `edge_click_db`
measures it either way.

Training uses `codec_loss` (waveform L1 + multi-resolution STFT loss); `audio_metrics` measures
what a listener would notice: waveform SNR, log-spectral distance, and whether event onsets
(gunshots, doors) survive.

This module knows waveforms and latents, not datasets, training loops or the world model.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from liveworld.common import LiveworldError


@dataclass(frozen=True)
class AudioCodecConfig:
    sample_rate_hz: int = 22050
    samples_per_frame: int = 1260  # S: Doom records 2 tics of 630 samples per frame
    channels: int = 2  # C
    tokens_per_frame: int = 4  # N
    latent_channels: int = 16  # D
    # Conv width at each level, before its downsampling. These give ~0.7 ms to encode and ~0.7 ms
    # to decode a Doom frame on one CPU core; res_blocks=2 doubles that.
    widths: tuple[int, ...] = (16, 32, 64, 96)
    strides: tuple[int, ...] = (3, 3, 5, 7)  # one per level; product * N >= S (fit_config picks them)
    res_blocks: int = 1  # residual blocks per level (the decoder mirrors them)
    latent_noise: float = 0.05  # std of noise added to the normalised latents in training: decoder robust to model error
    overlap_tokens: int = 0  # k: each frame also codes k hops of each neighbour (a lapped codec; 0: frames alone)

    @property
    def hop(self) -> int:
        """Samples per latent token."""
        return math.prod(self.strides)

    @property
    def overlap(self) -> int:
        """O: samples a frame's window reaches into each neighbour."""
        return self.overlap_tokens * self.hop

    @property
    def window(self) -> int:
        """Samples a frame's tokens encode and decode: S + 2O."""
        return self.samples_per_frame + 2 * self.overlap


PRESETS = {
    "default": AudioCodecConfig(),
    "tiny": AudioCodecConfig(tokens_per_frame=4, latent_channels=4, widths=(8, 8, 16, 16)),
    "lapped": AudioCodecConfig(overlap_tokens=1),
    "tiny-lapped": AudioCodecConfig(tokens_per_frame=4, latent_channels=4, widths=(8, 8, 16, 16), overlap_tokens=1),
}


def choose_strides(hop: int, levels: int, max_stride: int = 8) -> tuple[int, ...]:
    """The `levels` strides in 2..max_stride whose product is the smallest one >= hop (least
    padding), ties broken towards balanced strides (no one level does most of the work), ascending:
    the cheap small strides run at full resolution."""
    if hop > max_stride**levels:
        raise LiveworldError(f"a hop of {hop} samples per token needs more than {levels} levels of stride <= {max_stride}; "
                             f"raise tokens_per_frame or add a level to `widths`")
    best = min(itertools.combinations_with_replacement(range(2, max_stride + 1), levels),
               key=lambda s: (math.prod(s) if math.prod(s) >= hop else math.inf, sorted(s, reverse=True)))
    return tuple(sorted(best))


def fit_config(base: AudioCodecConfig, rate: int, length: int, channels: int) -> AudioCodecConfig:
    """`base` adapted to a dataset: its sample rate, samples per frame and channel count, with
    strides re-chosen so that `tokens_per_frame` tokens cover one frame."""
    if length <= 0 or channels <= 0 or rate <= 0:
        raise LiveworldError(f"audio of {channels} channels x {length} samples per frame at {rate} Hz cannot be coded; "
                             f"the dataset's audio is empty or damaged, re-record it")
    hop = -(-length // base.tokens_per_frame)  # ceil
    return dataclasses.replace(base, sample_rate_hz=int(rate), samples_per_frame=int(length), channels=int(channels),
                               strides=choose_strides(hop, len(base.widths)))


# ---------------------------------------------------------------------------------------------
# Network


class ResBlock1d(nn.Module):
    def __init__(self, ch: int, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv1d(ch, ch, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(ch, ch, 1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Down(nn.Module):
    """Strided conv, kernel 2 * stride, padded so that a length L (a multiple of the stride)
    becomes exactly L / stride for odd strides too."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return self.conv(F.pad(x, (s // 2, s - s // 2)))


class Up(nn.Module):
    """Transposed conv, kernel 2 * stride: L -> L * stride after cropping the overhang."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, L = self.stride, x.shape[-1]
        return self.conv(x)[..., s // 2 : s // 2 + L * s]


def _blocks(ch: int, n: int) -> list[nn.Module]:
    return [ResBlock1d(ch, dilation=3**i) for i in range(n)]  # dilations 1, 3, 9 widen the view cheaply


class AudioCodec(nn.Module):
    def __init__(self, cfg: AudioCodecConfig):
        super().__init__()
        if len(cfg.widths) != len(cfg.strides):
            raise LiveworldError(f"audio codec needs one stride per width, got widths {cfg.widths} and strides {cfg.strides}")
        if cfg.hop * cfg.tokens_per_frame < cfg.samples_per_frame or cfg.hop * (cfg.tokens_per_frame - 1) >= cfg.samples_per_frame:
            raise LiveworldError(f"strides {cfg.strides} (hop {cfg.hop}) do not give {cfg.tokens_per_frame} tokens for "
                                 f"{cfg.samples_per_frame} samples; build the config with fit_config()")
        if cfg.overlap_tokens and (cfg.hop * cfg.tokens_per_frame != cfg.samples_per_frame or 2 * cfg.overlap > cfg.samples_per_frame):
            raise LiveworldError(f"a lapped codec needs tokens x hop = samples per frame exactly ({cfg.tokens_per_frame} x {cfg.hop} "
                                 f"!= {cfg.samples_per_frame}) and an overlap of at most half a frame; pick samples_per_frame "
                                 f"as a product of strides in 2..8 times tokens_per_frame")
        self.cfg = cfg
        w = cfg.widths
        enc: list[nn.Module] = [nn.Conv1d(cfg.channels, w[0], 7, padding=3)]
        for i, s in enumerate(cfg.strides):
            nxt = w[i + 1] if i + 1 < len(w) else w[-1]
            enc += _blocks(w[i], cfg.res_blocks) + [nn.SiLU(), Down(w[i], nxt, s)]
        enc += [nn.SiLU(), nn.Conv1d(w[-1], cfg.latent_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        # Zero mean, unit variance per latent channel; the running statistics are buffers, so they
        # are saved with the weights and averaged by the trainer's EMA like any weight.
        self.norm = nn.BatchNorm1d(cfg.latent_channels, affine=False)

        dec: list[nn.Module] = [nn.Conv1d(cfg.latent_channels, w[-1], 3, padding=1)]
        for i in reversed(range(len(w))):
            prev = w[i + 1] if i + 1 < len(w) else w[-1]
            dec += [nn.SiLU(), Up(prev, w[i], cfg.strides[i])] + _blocks(w[i], cfg.res_blocks)
        dec += [nn.SiLU(), nn.Conv1d(w[0], cfg.channels, 7, padding=3)]
        self.decoder = nn.Sequential(*dec)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.cfg.channels or x.shape[2] == 0:
            raise LiveworldError(f"audio codec takes float [B, {self.cfg.channels}, S] audio in [-1, 1], got "
                                 f"{x.dtype} {list(x.shape)}; convert int16 with to_float()")
        if not x.is_floating_point():
            raise LiveworldError(f"audio codec takes float audio in [-1, 1], got {x.dtype}; convert int16 with to_float()")

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, S (+ 2O for a lapped codec)] -> un-normalised latents [B, D, N], N = ceil(S / hop):
        a lapped codec's encoder sees the whole window and keeps the tokens of the frame itself."""
        self._check(x)
        k = self.cfg.overlap_tokens
        if k and x.shape[-1] != self.cfg.window:
            raise LiveworldError(f"a lapped codec encodes windows of {self.cfg.window} samples (a frame and {self.cfg.overlap} of each "
                                 f"neighbour), got {x.shape[-1]}; cut them with frame_windows()")
        pad = -x.shape[-1] % self.cfg.hop
        z = self.encoder(F.pad(x, (0, pad)))
        return z[..., k : z.shape[-1] - k] if k else z

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, S (+ 2O)] in [-1, 1] -> normalised latents [B, N, D]."""
        return self.norm(self.encode_raw(x)).transpose(1, 2)

    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """[B, N, D] -> [B, C, length] in [-1, 1]; length defaults to the frame's window (S, or
        S + 2O for a lapped codec) when N = tokens_per_frame, else N * hop."""
        return self._decode(z, length).clamp(-1, 1)

    def _decode(self, z: torch.Tensor, length: int | None) -> torch.Tensor:
        if z.ndim != 3 or z.shape[2] != self.cfg.latent_channels:
            raise LiveworldError(f"audio codec decodes latents [B, N, {self.cfg.latent_channels}], got {list(z.shape)}")
        k = self.cfg.overlap_tokens
        if length is None:
            length = self.cfg.window if z.shape[1] == self.cfg.tokens_per_frame else z.shape[1] * self.cfg.hop + 2 * self.cfg.overlap
        zt = z.transpose(1, 2)
        if k:  # the neighbours' hops are decoded from the frame's own edge tokens, held
            zt = F.pad(zt, (k, k), mode="replicate")
        return self.decoder(zt)[..., :length]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: unclamped reconstruction [B, C, S] (with latent noise in training mode)
        and the normalised latents [B, N, D]."""
        z = self.encode(x)
        zn = z + self.cfg.latent_noise * torch.randn_like(z) if self.training else z
        return self._decode(zn, x.shape[-1]), z


def frame_stream(audio: np.ndarray | torch.Tensor, frames: int, S: int, channels: int) -> torch.Tensor:
    """An episode's sound [L, C'] (int16 or float, kept in its scale) -> float [channels,
    frames * S]: resampled (linearly) so that each frame has exactly S samples, whatever the
    world's rate (Atari's 2,048 samples a frame become the codec's 1,260; the world then plays
    at S x fps), mono spread to every channel, extra channels averaged away."""
    x = torch.as_tensor(np.asarray(audio, np.float32) if isinstance(audio, np.ndarray) else audio).T.float()
    if x.shape[0] != channels:
        x = x.mean(0, keepdim=True).expand(channels, -1)
    n = frames * S
    if x.shape[1] != n and x.shape[1] > 0:
        x = F.interpolate(x[None], size=n, mode="linear", align_corners=False)[0]
    elif x.shape[1] == 0:
        x = x.new_zeros(channels, n)
    return x.contiguous()


def frame_windows(stream: torch.Tensor, S: int, O: int) -> torch.Tensor:
    """[C, T * S] -> each frame's window [T, C, S + 2O]: its S samples and O of each neighbour,
    zero before the first frame and after the last."""
    C, L = stream.shape
    T = L // S
    x = F.pad(stream[:, : T * S], (O, O))
    return x.unfold(1, S + 2 * O, S).permute(1, 0, 2).contiguous()


def episode_windows(audio: np.ndarray, frames: int, cfg: AudioCodecConfig) -> torch.Tensor:
    """An episode's int16 sound [L, C'] -> each frame's window as a lapped codec codes it,
    float [frames, C, S + 2O] in int16 scale (`frame_stream`, then `frame_windows`)."""
    S = cfg.samples_per_frame
    return frame_windows(frame_stream(audio, frames, S, cfg.channels), S, cfg.overlap)


class AudioStream:
    """Plays decoded frames back to back: for a lapped codec each window [C, S + 2O] is
    cross-faded into the one before over the 2O samples they share (linear ramps that sum to 1,
    so where both frames agree the sound passes unchanged); each push returns S new samples,
    the O samples at its end still waiting on the next frame. Without overlap it returns the
    frame as decoded. One stream per listener; state is the faded tail of the last window."""

    def __init__(self, S: int, O: int):
        self.S, self.O = S, O
        self.tail: torch.Tensor | None = None
        ramp = (torch.arange(2 * O, dtype=torch.float32) + 0.5) / max(1, 2 * O)
        self.fade_in, self.fade_out = ramp, 1 - ramp

    def push(self, window: torch.Tensor) -> torch.Tensor:
        """[C, S + 2O] (or [B, C, S + 2O] for B listeners in step) -> the next [.., C, S] samples."""
        S, O = self.S, self.O
        if O == 0:
            return window[..., :S]
        head = window[..., : 2 * O]
        if self.tail is not None:
            head = head * self.fade_in.to(window) + self.tail
        out = torch.cat([head, window[..., 2 * O : S]], -1)
        self.tail = window[..., S : S + 2 * O] * self.fade_out.to(window)
        return out

    def play(self, windows: torch.Tensor) -> torch.Tensor:
        """Frames [T, C, S + 2O] -> the stream [C, T * S] this player hears."""
        return torch.cat([self.push(w) for w in windows], -1)


def edge_click_db(stream: torch.Tensor, S: int, lag: int = 0) -> float:
    """Clicks at the frame rate: 10 log10 of the mean squared sample step at frame edges over
    that at mid-frame, in a stream [C, L] whose frame t begins at sample t * S + lag (a lapped
    player lags by O). Real sound has no reason to change at an edge: about 0 dB; a codec that
    codes frames alone is audibly above, one that blurs its joins below."""
    d = stream[:, 1:] - stream[:, :-1]  # d[:, i] is the step from sample i to i + 1
    edges = torch.arange(S + lag - 1, d.shape[1], S)
    mids = edges - S // 2
    keep = mids >= 0
    edges, mids = edges[keep], mids[keep]
    if len(edges) == 0:
        return 0.0
    e_edge, e_mid = d[:, edges].square().mean().item(), d[:, mids].square().mean().item()
    return 10 * math.log10((e_edge + 1e-12) / (e_mid + 1e-12))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """int16 samples -> float32 in [-1, 1)."""
    return x.float() / 32768


# ---------------------------------------------------------------------------------------------
# Loss: waveform L1 + multi-resolution STFT loss, following Yamamoto et al. 2020 (Parallel
# WaveGAN), eqs. 4-6: per resolution, spectral convergence (linear magnitudes, weighs the loud
# parts) + L1 of log magnitudes (weighs the quiet parts), averaged over resolutions. The STFT
# terms make a codec sound right; the waveform term keeps the phase, hence the SNR.

STFT_RESOLUTIONS = ((512, 128), (256, 64), (128, 32), (64, 16))  # (FFT size = window, hop)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """[..., S] -> magnitudes [..., n_fft // 2 + 1, frames]; the power is floored at 1e-7 as in
    Parallel WaveGAN so that log and sqrt stay finite on silence."""
    shape = x.shape
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x.reshape(-1, shape[-1]), n_fft, hop, window=window, return_complex=True)
    mag = (spec.real.square() + spec.imag.square()).clamp_min(1e-7).sqrt()
    return mag.reshape(*shape[:-1], *mag.shape[-2:])


def stft_loss(y: torch.Tensor, x: torch.Tensor, resolutions=STFT_RESOLUTIONS) -> torch.Tensor:
    """Multi-resolution STFT loss of reconstruction y against target x, both [B, C, S]."""
    terms = []
    for n_fft, hop in resolutions:
        if n_fft // 2 >= x.shape[-1]:  # reflect padding needs the frame longer than half a window
            continue
        my, mx = stft_magnitude(y, n_fft, hop), stft_magnitude(x, n_fft, hop)
        convergence = torch.linalg.vector_norm(mx - my) / torch.linalg.vector_norm(mx)
        log_mag = F.l1_loss(my.log(), mx.log())
        terms.append(convergence + log_mag)
    if not terms:
        raise LiveworldError(f"frames of {x.shape[-1]} samples are too short for the STFT loss (needs > {resolutions[-1][0] // 2})")
    return torch.stack(terms).mean()


def codec_loss(recon: torch.Tensor, x: torch.Tensor, wave_weight: float = 30.0, edge_weight: float = 16.0,
               edge_samples: float = 16.0) -> torch.Tensor:
    """Training loss of a reconstruction [B, C, S] against the input.

    The waveform L1 is weighted up because its values are ~10x smaller than the spectral terms'
    (audio rms ~0.1). Samples near the frame edges weigh up to 1 + edge_weight times more:
    frames are decoded one by one and played back to back, so an error at an edge is a
    discontinuity, which is heard as a click at the frame rate."""
    S = x.shape[-1]
    pos = torch.arange(S, device=x.device, dtype=x.dtype)
    w = 1 + edge_weight * torch.exp(-torch.minimum(pos, S - 1 - pos) / edge_samples)
    wave = ((recon - x).abs() * w).mean() / w.mean()
    return wave_weight * wave + stft_loss(recon, x)


# ---------------------------------------------------------------------------------------------
# Metrics, on the frames played back to back (as a listener hears them, frame edges included).

FLOOR_DB = -80.0  # levels below this count as this: inaudible noise in silent frames must not dominate
ONSET_JUMP_DB = 9.0  # an onset: a window at least this much louder than the one before ...
ONSET_MIN_DB = -50.0  # ... and audible
ONSET_SLACK_DB = 3.0  # in the reconstruction a jump 3 dB smaller still counts: borderline onsets are not "lost"
WINDOW_S = 0.01  # onset / envelope windows of 10 ms


def log_energy_db(x: torch.Tensor, window: int) -> torch.Tensor:
    """[C, L] -> per-window energy in dBFS [L // window], channels averaged, floored at FLOOR_DB."""
    n = x.shape[-1] // window
    power = x[:, : n * window].reshape(x.shape[0], n, window).square().mean((0, 2))
    return 10 * torch.log10(power.clamp_min(10 ** (FLOOR_DB / 10)))


def find_onsets(env_db: torch.Tensor, jump_db: float = ONSET_JUMP_DB) -> torch.Tensor:
    """Indices of windows at least `jump_db` louder than the window before and above ONSET_MIN_DB."""
    rise = env_db[1:] - env_db[:-1]
    return torch.nonzero((rise > jump_db) & (env_db[1:] > ONSET_MIN_DB)).flatten() + 1


def _matched(onsets: torch.Tensor, other: torch.Tensor, n: int) -> float:
    """Fraction of `onsets` with an `other` onset within +-1 window; 1.0 when there are none."""
    if len(onsets) == 0:
        return 1.0
    hit = torch.zeros(n + 2, dtype=torch.bool)
    hit[other + 1] = True  # shifted by one so that +-1 stays in range
    near = hit[onsets] | hit[onsets + 1] | hit[onsets + 2]
    return near.float().mean().item()


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation; for a constant envelope (silence) 1.0 if both are equal, else 0.0."""
    a, b = a - a.mean(), b - b.mean()
    den = (a.square().sum() * b.square().sum()).sqrt()
    if den < 1e-9:
        return float(torch.allclose(a, b))
    return (a * b).sum().div(den).item()


def log_spectral_distance_db(x: torch.Tensor, y: torch.Tensor, n_fft: int = 512) -> float:
    """LSD of y against x, both [C, L]: per STFT window, the rms over frequency of the difference
    of the power spectra in dB; averaged over windows and channels. Spectra are scaled so that a
    full-scale sine peaks near 0 dB, and floored at FLOOR_DB."""
    if x.shape[-1] <= n_fft // 2:
        n_fft = 2 ** int(math.log2(max(x.shape[-1], 4))) // 2
    window = torch.hann_window(n_fft)
    scale = (window.sum() / 2) ** 2

    def db(s):
        p = torch.stft(s, n_fft, n_fft // 4, window=window, return_complex=True).abs().square() / scale
        return 10 * torch.log10(p.clamp_min(10 ** (FLOOR_DB / 10)))

    return (db(x) - db(y)).square().mean(-2).sqrt().mean().item()


@torch.no_grad()
def audio_metrics(model: AudioCodec, val: torch.Tensor, batch: int = 256) -> dict:
    """Reconstruction quality on int16 frames [N, C, S] (a lapped codec: consecutive windows
    [N, C, S + 2O]), coded one frame at a time and played back to back as a listener hears them
    (`AudioStream`):

    audio_snr_db         10 log10(sum x^2 / sum (x - y)^2) over all samples
    audio_lsd_db         log-spectral distance (dB, lower is better)
    audio_envelope_corr  correlation of the 10 ms log-energy envelopes
    audio_onset_recall   fraction of onsets of x (a 10 ms window > 9 dB louder than the one
                         before) also found in y within +-1 window
    audio_onset_precision  fraction of onsets of y also in x: spurious clicks lower it
    audio_onsets         how many onsets x has (recall is 1.0 when there are none)
    audio_edge_jump_ratio  mean |step| between the last sample of a frame and the first of the
                         next, y over x: above 1, frames join with clicks at the frame rate
    audio_edge_click_db  `edge_click_db` of y, beside real_edge_click_db of x
    """
    if val.ndim != 3 or val.dtype != torch.int16:
        raise LiveworldError(f"audio_metrics takes int16 frames [N, C, S], got {val.dtype} {list(val.shape)}")
    S, O = model.cfg.samples_per_frame, model.cfg.overlap
    was_training = model.training
    model.eval()
    try:
        x = to_float(val)
        y = torch.cat([model.decode(model.encode(b), b.shape[-1]) for b in x.split(batch)])
    finally:
        model.train(was_training)
    xs = x[..., :S].permute(1, 0, 2).reshape(x.shape[1], -1)  # [C, N * S]: what the player's stream holds
    ys = AudioStream(S, O).play(y)
    snr = 10 * math.log10((xs.square().sum().item() + 1e-10) / ((xs - ys).square().sum().item() + 1e-10))
    window = max(1, round(WINDOW_S * model.cfg.sample_rate_hz))
    ex, ey = log_energy_db(xs, window), log_energy_db(ys, window)
    ox, oy = find_onsets(ex), find_onsets(ey, ONSET_JUMP_DB - ONSET_SLACK_DB)
    oy_strict = find_onsets(ey)
    xf, yf = xs.reshape(x.shape[1], -1, S).transpose(0, 1), ys.reshape(y.shape[1], -1, S).transpose(0, 1)
    return {
        "audio_snr_db": round(snr, 3),
        "audio_lsd_db": round(log_spectral_distance_db(xs, ys), 3),
        "audio_envelope_corr": round(_corr(ex, ey), 4),
        "audio_onset_recall": round(_matched(ox, oy, len(ex)), 4),
        "audio_onset_precision": round(_matched(oy_strict, find_onsets(ex, ONSET_JUMP_DB - ONSET_SLACK_DB), len(ex)), 4),
        "audio_onsets": int(len(ox)),
        "audio_edge_jump_ratio": round((_edge_jump(yf) + 1e-4) / (_edge_jump(xf) + 1e-4), 3),  # +1e-4 (3 LSB): silence gives 1
        "audio_edge_click_db": round(edge_click_db(ys, S, lag=O), 3),
        "real_edge_click_db": round(edge_click_db(xs, S), 3),
    }


def _edge_jump(x: torch.Tensor) -> float:
    """Mean |x[t + 1, :, 0] - x[t, :, -1]| of frames [N, C, S] played back to back."""
    return (x[1:, :, 0] - x[:-1, :, -1]).abs().mean().item() if len(x) > 1 else 0.0
