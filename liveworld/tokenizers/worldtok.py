"""A world's full set of tokenizers, loaded from one directory:

    DIR/video/   video autoencoder checkpoint
    DIR/audio/   audio codec checkpoint (absent for a silent world)
    DIR/text/    text tokenizer

plus the world's action space (from the dataset or the world-model checkpoint). It turns an
episode into per-frame tokens and generated tokens back into frames and sound.

Knows tokenizers and the episode schema; knows nothing about the world model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace, Episode
from liveworld.tokenizers import load_tokenizer
from liveworld.tokenizers.action import ActionEncoder
from liveworld.tokenizers.text import TextTokenizer


class WorldTokenizers:
    def __init__(self, root: str | Path, action_space: ActionSpace):
        self.root = Path(root)
        if not (self.root / "video" / "config.json").exists():
            raise LiveworldError(f"{self.root} holds no video tokenizer (video/config.json); train one with "
                                 f"`liveworld train-tokenizer --modality video --out {self.root}/video`")
        self.video = load_tokenizer(self.root / "video")
        self.audio = load_tokenizer(self.root / "audio") if (self.root / "audio" / "config.json").exists() else None
        if not (self.root / "text").exists():
            raise LiveworldError(f"{self.root} holds no text tokenizer (text/); train one with "
                                 f"`liveworld train-tokenizer --modality text --out {self.root}/text`")
        self.text = TextTokenizer.load(self.root / "text")
        self.action_space = action_space
        self.actions = ActionEncoder(action_space)

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.video.cfg.frame_size)

    @property
    def grid(self) -> tuple[int, int]:
        f = self.video.cfg.downsample
        return self.frame_size[1] // f, self.frame_size[0] // f

    @property
    def samples_per_frame(self) -> int:
        return self.audio.cfg.samples_per_frame if self.audio is not None else 0

    @torch.no_grad()
    def encode_episode(self, ep: Episode, batch: int = 256) -> dict:
        """An episode -> its per-frame tokens, the one path training and evaluation share:
        video [T, C, h, w], action [T, A], audio [T, Na, Ca] (None for a silent world or episode),
        texts: each frame's text (a list of T strings)."""
        from liveworld.data.arrays import resize_frames

        if ActionSpace.from_dict(ep.meta["action_space"]).to_dict() != self.action_space.to_dict():
            raise LiveworldError(f"episode action space {ep.meta['action_space']} differs from the tokenizers' {self.action_space.to_dict()}")
        frames = resize_frames(ep.frames, self.frame_size)
        video = torch.cat([self.video.encode(b.float() / 255) for b in frames.split(batch)])
        audio = self.encode_audio_episode(ep) if self.audio is not None else None  # silence where an episode has none
        return {"video": video, "action": self.actions.encode(ep.actions).float(), "audio": audio, "texts": ep.frame_texts()}

    def text_ids(self, texts: list[str], text_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Strings -> token ids [U, text_len] and validity [U, text_len] (cut, zero-padded)."""
        ids = torch.zeros(len(texts), text_len, dtype=torch.long)
        valid = torch.zeros(len(texts), text_len, dtype=torch.bool)
        for i, s in enumerate(texts):
            enc = self.text.encode(s)[:text_len] if s else []
            ids[i, : len(enc)] = torch.tensor(enc, dtype=torch.long)
            valid[i, : len(enc)] = True
        return ids, valid

    @torch.no_grad()
    def encode_audio_episode(self, ep: Episode, batch: int = 512) -> torch.Tensor:
        """Each frame's audio, cut or zero-padded to the codec's frame length -> [T, Na, Ca]."""
        S, C = self.audio.cfg.samples_per_frame, self.audio.cfg.channels
        clips = np.zeros((len(ep), C, S), np.int16)
        for t in range(len(ep)):
            a = ep.frame_audio(t)[:S, :C]
            clips[t, : a.shape[1], : len(a)] = a.T
        x = torch.from_numpy(clips).float() / 32768
        return torch.cat([self.audio.encode(b) for b in x.split(batch)])

    @torch.no_grad()
    def decode_audio(self, z: torch.Tensor) -> np.ndarray:
        """[T, Na, Ca] -> int16 [T * S, C]: one frame's sound after another."""
        y = self.audio.decode(z).clamp(-1, 1)  # [T, C, S]
        return (y.permute(0, 2, 1).reshape(-1, y.shape[1]) * 32767).round().to(torch.int16).numpy()

    @torch.no_grad()
    def decode_video(self, z: torch.Tensor) -> np.ndarray:
        """[T, C, h, w] -> uint8 [T, H, W, 3]."""
        x = self.video.decode(z)
        return (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
