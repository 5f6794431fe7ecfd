import json

import pytest

from liveworld.cli import main
from liveworld.common import LiveworldError
from liveworld.tokenizers import load_tokenizer
from liveworld.train.tokenizers import train_tokenizer


def test_video_and_audio_training_resume_and_load(tiny_world, tmp_path):
    data = str(tiny_world / "data")
    m1 = train_tokenizer("video", data, str(tmp_path / "v"), steps=4, preset="tiny", progress=False)
    assert "val_psnr_db" in m1 and m1["step"] == 4
    m2 = train_tokenizer("video", data, str(tmp_path / "v"), steps=8, preset="tiny", resume=True, progress=False)
    assert m2["step"] == 8
    assert load_tokenizer(tmp_path / "v").cfg.latent_channels == 4
    a = train_tokenizer("audio", data, str(tmp_path / "a"), steps=3, preset="tiny", progress=False)
    assert {"audio_snr_db", "audio_lsd_db", "audio_onset_recall"} <= set(a)
    codec = load_tokenizer(tmp_path / "a")
    assert codec.cfg.samples_per_frame == 1260 and codec.cfg.channels == 2  # fitted to the Doom recording
    with pytest.raises(LiveworldError, match="already holds a checkpoint"):
        train_tokenizer("video", data, str(tmp_path / "v"), steps=4, preset="tiny", progress=False)
    with pytest.raises(LiveworldError, match="nothing to resume"):
        train_tokenizer("video", data, str(tmp_path / "none"), steps=4, preset="tiny", resume=True, progress=False)
    with pytest.raises(LiveworldError, match="give a budget"):
        train_tokenizer("video", data, str(tmp_path / "x"), preset="tiny", progress=False)
    with pytest.raises(LiveworldError, match="unknown preset"):
        train_tokenizer("video", data, str(tmp_path / "y"), steps=1, preset="huge", progress=False)


def test_bench_tokenizers_json_last(tiny_world, capsys):
    assert main(["bench", "tokenizers", "--checkpoint", str(tiny_world / "tok"), "--data", str(tiny_world / "data"),
                 "--frames", "16"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in ("video_psnr_db", "video_encode_ms", "video_decode_ms", "audio_snr_db"):
        assert k in res
    assert res["frames"] == 16 and res["latent_shape"] == [4, 3, 4]
