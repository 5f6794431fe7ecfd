import pytest
import torch
import torch.nn.functional as F

from liveworld.common import LiveworldError
from liveworld.data.arrays import resize_frames
from liveworld.eval.metrics import psnr_db
from liveworld.tokenizers.video import PRESETS, VideoAutoencoder


@pytest.mark.parametrize("size", [(64, 48), (48, 64), (96, 40)])
def test_any_multiple_of_8_at_any_aspect(size):
    model = VideoAutoencoder(PRESETS["tiny"]).eval()
    W, H = size
    x = torch.rand(2, 3, H, W)
    z = model.encode(x)
    assert z.shape == (2, 4, H // 8, W // 8)
    y = model.decode(z)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_bad_sizes_are_named():
    model = VideoAutoencoder(PRESETS["tiny"])
    with pytest.raises(LiveworldError, match="multiples of 8"):
        model.encode(torch.rand(1, 3, 50, 64))
    with pytest.raises(LiveworldError, match=r"\[B, 3, H, W\]"):
        model.encode(torch.rand(3, 48, 64))


def test_tiny_autoencoder_learns_two_aspect_ratios():
    torch.manual_seed(0)
    model = VideoAutoencoder(PRESETS["tiny"])
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    batches = [torch.rand(4, 3, 1, 1).expand(4, 3, 24, 32).contiguous() * torch.linspace(0.2, 1, 32),
               torch.rand(4, 3, 1, 1).expand(4, 3, 32, 16).contiguous() * torch.linspace(0.2, 1, 16)]
    model.eval()
    with torch.no_grad():
        before = [psnr_db(model.decode_raw(model.encode_raw(b)), b).mean() for b in batches]
    model.train()
    for step in range(80):
        x = batches[step % 2]
        y, _ = model(x)
        loss = F.mse_loss(y, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = [psnr_db(model.decode_raw(model.encode_raw(b)), b).mean() for b in batches]
    assert all(a > b + 3 for a, b in zip(after, before)), (before, after)


def test_resize_frames_area_resize():
    frames = torch.randint(0, 256, (2, 120, 160, 3), dtype=torch.uint8)
    x = resize_frames(frames.numpy(), (64, 48)).float() / 255
    assert x.shape == (2, 3, 48, 64) and 0 <= x.min() and x.max() <= 1
    assert torch.allclose(x.mean(), frames.float().mean() / 255, atol=1e-3)  # area averaging keeps the mean


def test_each_world_keeps_its_aspect_ratio_at_about_the_same_token_count():
    from liveworld.tokenizers.video import frame_size_for

    assert frame_size_for((160, 120), 8, 48) == (64, 48)  # Doom 4:3, an 8x6 grid
    assert frame_size_for((160, 210), 8, 48) == (48, 64)  # Atari, taller than wide: 6x8
    assert frame_size_for((256, 256), 8, 48) == (56, 56)  # a BabyAI room, square: 7x7
    assert frame_size_for((160, 120), 16, 48) == (128, 96)  # a 16x autoencoder: twice the pixels a side
    assert frame_size_for((20, 12), 8, 48) == (16, 8)  # never under one latent a side (nor above native)
