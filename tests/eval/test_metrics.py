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


def test_edge_energy_of_known_images():
    from liveworld.eval.metrics import edge_energy

    H, W = 6, 9
    stripes = (torch.arange(W) % 2).float().expand(1, 3, H, W)  # 1 across every neighbour, 0 down
    ramp = (torch.arange(W).float() / (W - 1)).expand(1, 3, H, W)
    flat = torch.full((1, 3, H, W), 0.3)
    both = (torch.arange(W) % 2).float()[None, :] * (torch.arange(H) % 2).float()[:, None]  # 1 where row and column are odd
    e = edge_energy(torch.cat([stripes, ramp, flat, both.expand(1, 3, H, W)]))
    assert torch.allclose(e[:3], torch.tensor([0.5, 0.5 / (W - 1), 0.0], dtype=e.dtype))
    # a 1 wherever row and column are both odd: across, the 3 odd rows of 6 change at all 8 steps
    # (1/2); down, the 4 odd columns of 9 change at all 5 steps (4/9)
    assert abs(e[3].item() - (1 / 2 + 4 / 9) / 2) < 1e-12
