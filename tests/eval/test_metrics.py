"""The structural measure of eval: a frame of the world lies near some real frame; noise with
the same pixel statistics does not."""

import torch

from liveworld.eval.metrics import nearest_real, pixel_stats


def test_nearest_real_tells_frames_from_texture_with_their_statistics():
    g = torch.Generator().manual_seed(0)
    base = torch.rand((8, 3, 12, 16), generator=g)
    bank = torch.cat([base + 0.02 * k for k in range(5)]).clamp(0, 1)  # five views of eight scenes
    frames = (base[:4] + 0.01).clamp(0, 1)  # new frames of known scenes
    # texture: the same pixels shuffled, so mean and std match the frames
    texture = torch.stack([f.flatten()[torch.randperm(f.numel(), generator=g)].view_as(f) for f in frames])
    assert torch.allclose(pixel_stats(texture)["std"], pixel_stats(frames)["std"], atol=1e-5)
    near, far = nearest_real(frames, bank), nearest_real(texture, bank)
    assert near["psnr"].min() > 35 and far["psnr"].max() < 15
    assert near["ssim"].min() > 0.9 and far["ssim"].max() < 0.3
