"""A world's full set of tokenizers, loaded from one directory:

    DIR/video/   video autoencoder checkpoint
    DIR/audio/   audio codec checkpoint (absent for a silent world)
    DIR/text/    text tokenizer

plus the world's action space (from the dataset or the world-model checkpoint) and, for a
tokenizer set that serves several worlds, the world's frame size and its place in the model's
action union. It turns an episode into per-frame tokens and generated tokens back into frames
and sound.

Knows tokenizers and the episode schema; knows nothing about the world model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace, Episode
from liveworld.tokenizers import load_tokenizer
from liveworld.tokenizers.action import ActionEncoder, ActionUnion
from liveworld.tokenizers.audio import AudioStream, episode_windows
from liveworld.tokenizers.text import TextTokenizer


class WorldTokenizers:
    def __init__(self, root: str | Path, action_space: ActionSpace, frame_size: tuple[int, int] | None = None,
                 union: ActionUnion | None = None, world: str | None = None):
        """`frame_size` (W, H): the world's own, for a video autoencoder that serves several
        (default: the one it was trained at); `union` and `world`: action vectors in the width of
        a model over several worlds."""
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
        self.actions = union.for_world(world) if union is not None else ActionEncoder(action_space)
        self.world = world
        self._frame_size = tuple(frame_size) if frame_size is not None else tuple(self.video.cfg.frame_size)
        f = self.video.cfg.downsample
        if self._frame_size[0] % f or self._frame_size[1] % f:
            raise LiveworldError(f"frame size {self._frame_size} is not a multiple of the video autoencoder's {f}x downsampling")

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._frame_size

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
        return {"video": video, "action": self.actions.encode(ep.actions).float(), "audio": audio,
                "texts": ep.frame_texts(), "prompt": ep.meta.get("description", "")}

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
        """Each frame's audio -> [T, Na, Ca]; silence where an episode has none. A lapped codec
        codes each frame's window (its samples and O of each neighbour), the episode's sound
        first resampled to the codec's S samples a frame; a codec of frames alone codes each
        frame's samples cut or zero-padded to S."""
        cfg = self.audio.cfg
        S, C = cfg.samples_per_frame, cfg.channels
        if cfg.overlap_tokens:
            x = episode_windows(ep.audio, len(ep), cfg) / 32768
        else:
            clips = np.zeros((len(ep), C, S), np.int16)
            for t in range(len(ep)):
                a = ep.frame_audio(t)[:S, :C]
                clips[t, : a.shape[1], : len(a)] = a.T
            x = torch.from_numpy(clips).float() / 32768
        return torch.cat([self.audio.encode(b) for b in x.split(batch)])

    def audio_stream(self) -> AudioStream:
        """A listener's playback state (engine sessions keep one each)."""
        return AudioStream(self.audio.cfg.samples_per_frame, self.audio.cfg.overlap)

    @torch.no_grad()
    def decode_audio(self, z: torch.Tensor, streams: list[AudioStream] | None = None) -> np.ndarray:
        """[T, Na, Ca] -> int16 [T * S, C]. Without `streams`, T consecutive frames of one stream
        played back to back; with them, one frame for each of T listeners (row i continues
        streams[i]), their S samples each, one listener after another."""
        y = self.audio.decode(z).clamp(-1, 1)  # [T, C, S (+ 2O)]
        if streams is None:
            pcm = self.audio_stream().play(y)  # [C, T * S]
        else:
            pcm = torch.cat([st.push(w) for st, w in zip(streams, y)], -1)
        return (pcm.T * 32767).round().to(torch.int16).numpy()

    @torch.no_grad()
    def decode_video(self, z: torch.Tensor) -> np.ndarray:
        """[T, C, h, w] -> uint8 [T, H, W, 3]."""
        x = self.video.decode(z)
        return (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
