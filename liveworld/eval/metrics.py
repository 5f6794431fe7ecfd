"""Image and audio metrics that need no pretrained network (none can be downloaded here): MSE,
PSNR, SSIM, edge energy, log-spectral distance, and pixel statistics for drift. Pure functions
of tensors.

Images are float [B, 3, H, W] in [0, 1]; audio is float [B, S] or [B, C, S] in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per item: [B, ...] -> [B] (float64, so pooled sums stay exact)."""
    return (a.double() - b.double()).pow(2).flatten(1).mean(1)


def edge_energy(frames: torch.Tensor) -> torch.Tensor:
    """Mean |∇| per frame: the mean absolute difference between horizontally neighbouring pixels
    and that between vertically neighbouring ones, averaged, over all channels. [B, 3, H, W] in
    [0, 1] -> [B]. A flat frame scores 0; columns alternating 0 and 1 score 0.5 (1 across, 0
    down). Blur lowers it, texture and noise raise it: the figure PSNR cannot see."""
    f = frames.double()
    dx = (f[..., :, 1:] - f[..., :, :-1]).abs().flatten(1).mean(1)
    dy = (f[..., 1:, :] - f[..., :-1, :]).abs().flatten(1).mean(1)
    return (dx + dy) / 2


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B]."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def _gaussian(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004, Eq. 13) with a Gaussian window, [B] in [-1, 1].
    A 7-pixel window rather than 11 because the frames are small (64x48)."""
    C1, C2 = 0.01**2, 0.03**2
    g = _gaussian(window).to(a.device)
    k = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window)

    def blur(x):
        return F.conv2d(x, k, groups=x.shape[1])

    a, b = a.float(), b.float()
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2))
    return s.flatten(1).mean(1)


def log_spectral_distance_db(x: torch.Tensor, y: torch.Tensor, n_fft: int = 256) -> torch.Tensor:
    """Root-mean-square difference of log power spectra in dB, per item [B]."""
    x, y = x.reshape(-1, x.shape[-1]).float(), y.reshape(-1, y.shape[-1]).float()
    win = torch.hann_window(n_fft, device=x.device)
    X = torch.stft(x, n_fft, n_fft // 4, window=win, return_complex=True).abs().pow(2)
    Y = torch.stft(y, n_fft, n_fft // 4, window=win, return_complex=True).abs().pow(2)
    d = 10 * (torch.log10(X + 1e-8) - torch.log10(Y + 1e-8))
    return d.pow(2).mean(1).sqrt().mean(-1)


def pixel_stats(frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame statistics that expose collapse: mean (grey/black), std (flat) and mean
    absolute difference between neighbouring pixels (noise or blur). [B, 3, H, W] -> each [B]."""
    f = frames.float()
    tv = (f[..., 1:, :] - f[..., :-1, :]).abs().flatten(1).mean(1) + (f[..., :, 1:] - f[..., :, :-1]).abs().flatten(1).mean(1)
    return {"mean": f.flatten(1).mean(1), "std": f.flatten(1).std(1), "edges": tv}


def nearest_real(frames: torch.Tensor, bank: torch.Tensor, chunk: int = 256) -> dict[str, torch.Tensor]:
    """How much each frame looks like *some* real frame: PSNR and SSIM against its nearest frame
    (by MSE) in `bank` [M, 3, H, W]. Textured noise or mush with the right pixel statistics
    is far from every real frame; a plausible frame of the world is near one. -> each [B]."""
    f, r = frames.float().flatten(1), bank.float().flatten(1)
    r2 = r.pow(2).sum(1)
    best = []
    for i in range(0, len(f), chunk):
        x = f[i:i + chunk]
        d = x.pow(2).sum(1, keepdim=True) - 2 * x @ r.T + r2[None]
        best.append(d.argmin(1))
    near = bank[torch.cat(best)]
    return {"psnr": psnr_db(frames, near), "ssim": ssim(frames, near)}
