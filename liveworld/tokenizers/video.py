"""Per-frame video autoencoder: an RGB frame <-> a grid of latent tokens, 8x smaller per side.

Shape legend: B batch, H x W frame size (multiples of `downsample`), h = H / downsample,
w = W / downsample, C latent channels. `encode`: uint8-range float frames in [0, 1],
[B, 3, H, W] -> latents [B, C, h, w], normalised to zero mean and unit variance per channel
(the statistics are measured on training data and saved with the weights) so that a flow
model can use them as they are. `decode` is the inverse, returning [B, 3, H, W] in [0, 1].

Fully convolutional, so any size that is a multiple of the downsampling at any aspect ratio
works. The first 2x is a pixel (un)shuffle rather than a full-resolution convolution: full
resolution is where a conv autoencoder spends most of its FLOPs, and the decoder has to run in
every real-time frame. No normalisation layers: they cost CPU time and these frames are small.

This module knows frames and latents, not datasets, training or the world model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from liveworld.common import LiveworldError


@dataclass(frozen=True)
class VideoAutoencoderConfig:
    latent_channels: int = 16
    channels: tuple[int, ...] = (48, 96, 128)  # widths at 2x, 4x, 8x downsampling
    blocks: tuple[int, ...] = (1, 1, 1)  # encoder residual blocks per level (decoder: +1 at the lowest)
    frame_size: tuple[int, int] = (64, 48)  # (W, H) the world is trained at; any multiple of 8 works
    latent_noise: float = 0.05  # std of noise added to latents in training: decoder robust to model error

    @property
    def downsample(self) -> int:
        return 2 ** len(self.channels)


def frame_size_for(native: tuple[int, int], downsample: int, tokens: int) -> tuple[int, int]:
    """The (W, H) a world is trained at: its native (W, H) scaled so the latent grid holds about
    `tokens` positions, each side a multiple of `downsample`, the aspect ratio kept as closely as
    that allows (Doom 160x120 -> 64x48, Atari 160x210 -> 48x64, an 8x8 BabyAI room 256x256 ->
    56x56 at 8x and 48 tokens). Never larger than native, never under one latent per side."""
    W, H = native
    if W <= 0 or H <= 0:
        raise LiveworldError(f"a frame size must be positive, got {native}")
    scale = min(1.0, (tokens / (W * H)) ** 0.5 * downsample)

    def side(n: int) -> int:
        k = round(n * scale / downsample)
        if k * downsample > n:
            k = n // downsample
        return max(1, k) * downsample

    return side(W), side(H)


PRESETS = {
    "default": VideoAutoencoderConfig(),
    "tiny": VideoAutoencoderConfig(latent_channels=4, channels=(8, 16, 16), blocks=(1, 1, 1)),
    # 16x smaller per side: Doom at 128x96 on the same 8x6 grid (48 tokens) as 64x48 at 8x
    "x16": VideoAutoencoderConfig(channels=(32, 64, 96, 128), blocks=(1, 1, 1, 1), frame_size=(128, 96)),
}


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class VideoAutoencoder(nn.Module):
    def __init__(self, cfg: VideoAutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        enc: list[nn.Module] = [nn.PixelUnshuffle(2), nn.Conv2d(12, ch[0], 3, padding=1)]
        for i, c in enumerate(ch):
            enc += [ResBlock(c) for _ in range(cfg.blocks[i])]
            if i + 1 < len(ch):
                enc += [nn.Conv2d(c, ch[i + 1], 3, stride=2, padding=1)]
        enc += [nn.SiLU(), nn.Conv2d(ch[-1], cfg.latent_channels, 1)]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, ch[-1], 3, padding=1)]
        for i in reversed(range(len(ch))):
            dec += [ResBlock(ch[i]) for _ in range(cfg.blocks[i] + (i == len(ch) - 1))]
            if i > 0:
                dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch[i], ch[i - 1], 3, padding=1)]
        dec += [nn.SiLU(), nn.Conv2d(ch[0], 12, 3, padding=1), nn.PixelShuffle(2)]
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    def _check(self, x: torch.Tensor) -> None:
        f = self.cfg.downsample
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % f or x.shape[3] % f:
            raise LiveworldError(f"video autoencoder takes [B, 3, H, W] frames with H and W multiples of {f}, got {list(x.shape)}")

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> un-normalised latents [B, C, h, w]."""
        self._check(x)
        return self.encoder(x * 2 - 1)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return (self.decoder(z) + 1) / 2

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode_raw(x)
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        return self.decode_raw(z).clamp(0, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: reconstruction (with latent noise in training mode) and raw latents."""
        z = self.encode_raw(x)
        zn = z + self.cfg.latent_noise * torch.randn_like(z) * z.detach().std() if self.training else z
        return self.decode_raw(zn), z
