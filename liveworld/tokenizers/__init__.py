"""Modality tokenizers: video autoencoder, audio codec, text BPE, action encodings.

Each turns one frame's worth of a modality into tokens and back (`encode`/`decode`), has a
frozen config and a safetensors checkpoint. `load_tokenizer(path)` builds the right one from
the checkpoint's config.json alone.
"""

from __future__ import annotations

from pathlib import Path

import torch

from liveworld.checkpoint import config_from_dict, load_into, read_checkpoint_meta


def load_tokenizer(path: str | Path) -> torch.nn.Module:
    meta = read_checkpoint_meta(path)
    kind = meta.get("kind")
    if kind == "video_autoencoder":
        from liveworld.tokenizers.video import VideoAutoencoder as cls, VideoAutoencoderConfig as cfg_cls
    elif kind == "audio_codec":
        from liveworld.tokenizers.audio import AudioCodec as cls, AudioCodecConfig as cfg_cls
    else:
        from liveworld.common import LiveworldError

        raise LiveworldError(f"{path} holds a {kind!r} checkpoint, not a video or audio tokenizer")
    model = cls(config_from_dict(cfg_cls, meta["config"]))
    return load_into(model, path).eval()
