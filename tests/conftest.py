import os

# Spinning OpenMP threads make small ops slow on 2 cores; tests run single-threaded torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

torch.set_num_threads(1)

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def make_tiny_tokenizers(dataset: Path, out: Path, frame_size=(32, 24)) -> Path:
    """Untrained tiny video/audio tokenizers and a BPE trained on the dataset's texts: enough to
    drive the world-model pipeline end to end in seconds."""
    from liveworld.checkpoint import save_checkpoint
    from liveworld.data.arrays import split_audio
    from liveworld.data.shards import Dataset
    from liveworld.tokenizers import audio as A
    from liveworld.tokenizers import video as V
    from liveworld.tokenizers.text import TextTokenizer, TextTokenizerConfig, dataset_texts

    ds = Dataset.open(dataset)
    torch.manual_seed(0)
    vcfg = dataclasses.replace(V.PRESETS["tiny"], frame_size=frame_size)
    save_checkpoint(out / "video", "video_autoencoder", vcfg, V.VideoAutoencoder(vcfg).state_dict())
    _, rate, length = split_audio(ds, "train", 8)
    acfg = A.fit_config(dataclasses.replace(A.PRESETS["tiny"], tokens_per_frame=2), rate, length, 2)
    save_checkpoint(out / "audio", "audio_codec", acfg, A.AudioCodec(acfg).state_dict())
    TextTokenizer.train(dataset_texts(ds), TextTokenizerConfig(vocab_size=300)).save(out / "text")
    return out


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A 3-episode Doom dataset (one validation episode) and tiny tokenizers for it."""
    from liveworld.data.record import record

    root = tmp_path_factory.mktemp("tiny_world")
    record("doom:deathmatch", 3, 40, root / "data", "explore", seed=11, val_every=3, progress=False)
    make_tiny_tokenizers(root / "data", root / "tok")
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_world, tmp_path_factory):
    """A tiny world model trained for two steps on `tiny_world`: a run directory for engine,
    server, play and eval tests."""
    from liveworld.train.config import preset
    from liveworld.train.loop import train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    run = preset("tiny")
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=2))
    train(str(tiny_world / "data"), str(out), run, str(tiny_world / "tok"), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_stack_run(tiny_world, tmp_path_factory):
    """A tiny model of the `stack` kind (frames = 1: no window, 3 stacked latents, a conv stem
    and conv blocks) trained for two steps on `tiny_world`."""
    from liveworld.train.config import preset
    from liveworld.train.loop import train

    out = tmp_path_factory.mktemp("tiny_stack_run") / "run"
    run = preset("tiny-stack")
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=2))
    train(str(tiny_world / "data"), str(out), run, str(tiny_world / "tok"), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_worlds(tiny_world, tmp_path_factory):
    """Two worlds at two grids: the tiny Doom data (32x24, a 4x3 grid) and a MiniGrid one
    (24x24, 3x3), tiny tokenizers serving both (a lapped audio codec) and a model trained on
    both for two steps of two micro-batches (one per world). Returns (run, data, tokenizers)."""
    from liveworld.checkpoint import save_checkpoint
    from liveworld.data.record import record
    from liveworld.data.shards import Dataset
    from liveworld.tokenizers import audio as A
    from liveworld.tokenizers import video as V
    from liveworld.tokenizers.text import TextTokenizer, TextTokenizerConfig, dataset_texts
    from liveworld.train.config import preset
    from liveworld.train.loop import train

    root = tmp_path_factory.mktemp("tiny_worlds")
    record("minigrid:Empty-8x8-v0", 2, 24, root / "grid", "explore", seed=5, val_every=0, progress=False)
    tok = root / "tok"
    torch.manual_seed(0)
    vcfg = dataclasses.replace(V.PRESETS["tiny"], frame_size=(32, 24))
    sizes = {"doom:deathmatch": [32, 24], "minigrid:Empty-8x8-v0": [24, 24]}
    save_checkpoint(tok / "video", "video_autoencoder", vcfg, V.VideoAutoencoder(vcfg).state_dict(), extra={"frame_sizes": sizes})
    acfg = A.fit_config(A.PRESETS["tiny-lapped"], 22050, 1260, 2)
    save_checkpoint(tok / "audio", "audio_codec", acfg, A.AudioCodec(acfg).state_dict())
    texts = dataset_texts(Dataset.open(tiny_world / "data")) + dataset_texts(Dataset.open(root / "grid"))
    TextTokenizer.train(texts, TextTokenizerConfig(vocab_size=300)).save(tok / "text")
    run = preset("tiny")
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, steps=2, batch_size=4, micro_batch=2, p_text_start=0.5))
    data = f"{tiny_world / 'data'},{root / 'grid'}"
    train(data, str(root / "run"), run, str(tok), progress=False)
    return root / "run", data, tok
