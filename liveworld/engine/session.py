"""A stream's state as plain data: its KV cache, the last frame's latents (the next frame's
"previous frame" input, and the cache write it still owes), its text, its frame counter and its random generator. The engine
steps sessions; a session does nothing by itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from liveworld.model.cache import KVCache
from liveworld.model.memory import MemoryBank


@dataclass
class Session:
    cache: KVCache
    generator: torch.Generator
    start: int = 0
    text: str = ""
    frame_index: int = 0
    last_video: torch.Tensor | None = None  # [1, K*C, h, w]: the K newest frames the next one is stacked on
    last_audio: torch.Tensor | None = None  # [1, Na, Ca]
    pending: dict | None = None  # the last generated frame, written into the cache by the next step
    memory: MemoryBank | None = None  # the bank of units of frames that left the window (B = 1)
    window: list = field(default_factory=list)  # the window frames' latents, oldest first (with memory)
    opening: np.ndarray | None = None  # the decoded last opening frame, shown before the first step
    last_step_ms: float = 0.0
    info: dict = field(default_factory=dict)
    audio_stream: object | None = None  # the listener's playback state (tokenizers/audio.AudioStream)
