"""World-model training data: every frame of a dataset turned into tokens once by the frozen
tokenizers (video latents, audio latents, action vectors, text ids), cached in the run
directory as safetensors, and sampled as clips of consecutive frames.

The cache is a directory of .npy files that training memory-maps: a batch reads only its clips'
rows, so a dataset larger than memory trains the same way (the OS page cache keeps what is hot).

Frame t's text is the latest text event at or before t in its episode (a notification, a
caption, the mission), else the episode's description: the text segment of a clip is the text
of its last frame.

A model with memory also reads, per clip, the bank of memory units its stream would hold
(model/memory.py, built by the same code as the engine's).

This module knows datasets, tokenizers and the memory bank; it knows nothing about the network
or the objective.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from liveworld.common import LiveworldError, write_json_atomic
from liveworld.data.shards import Dataset
from liveworld.model.memory import MemoryBank, bank_of_prefix
from liveworld.model.omni import OmniConfig
from liveworld.data.episode import ActionSpace
from liveworld.tokenizers.action import ActionUnion
from liveworld.tokenizers.worldtok import WorldTokenizers


@dataclass
class Latents:
    """Concatenated per-frame tokens of a split; `starts` [E + 1] delimits its episodes. video,
    audio and action may be memory-mapped numpy arrays (`take` reads rows of either kind).

    video [N, C, h, w] float, audio [N, Na, Ca] float or None, action [N, A] float,
    text_index [N] into text_ids [U, T] / text_valid [U, T]; prompt_index [N] the same for each
    frame's episode description (the prompt a text-only start is trained with; caches written
    before it existed fall back to text_index).
    """

    video: torch.Tensor
    action: torch.Tensor
    text_index: torch.Tensor
    text_ids: torch.Tensor
    text_valid: torch.Tensor
    starts: torch.Tensor
    audio: torch.Tensor | None = None
    prompt_index: torch.Tensor | None = None

    def __post_init__(self):
        if self.prompt_index is None:
            self.prompt_index = self.text_index

    @classmethod
    def concat(cls, parts: list["Latents"]) -> "Latents":
        """Several data sets of one world as one: episodes one after another (a recording of
        revisit routes beside an exploring one, say). The arrays are copied once into memory."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [int(p.starts[-1]) for p in parts[:-1]])
        texts = np.cumsum([0] + [p.text_ids.shape[0] for p in parts[:-1]])
        T = max(p.text_ids.shape[1] for p in parts)

        def cat(name):  # np.asarray of a memory map is a view: one copy in all
            return torch.from_numpy(np.concatenate([np.asarray(getattr(p, name)) for p in parts]))

        def pad(x):
            return F.pad(x, (0, T - x.shape[1]))

        return cls(
            video=cat("video"), action=cat("action"),
            text_index=torch.cat([p.text_index + int(t) for p, t in zip(parts, texts)]),
            prompt_index=torch.cat([p.prompt_index + int(t) for p, t in zip(parts, texts)]),
            text_ids=torch.cat([pad(p.text_ids) for p in parts]), text_valid=torch.cat([pad(p.text_valid) for p in parts]),
            starts=torch.cat([parts[0].starts[:1]] + [p.starts[1:] + int(o) for p, o in zip(parts, offsets)]),
            audio=None if any(p.audio is None for p in parts) else cat("audio"),
        )

    def clip_starts(self, clip_len: int) -> torch.Tensor:
        """Every index i such that frames i .. i + clip_len - 1 lie in one episode."""
        out = []
        for a, b in zip(self.starts[:-1].tolist(), self.starts[1:].tolist()):
            if b - a >= clip_len:
                out.append(torch.arange(a, b - clip_len + 1))
        if not out:
            raise LiveworldError(f"no episode has {clip_len} frames; record longer episodes or lower --model.frames")
        return torch.cat(out)

    def clip(self, idx: torch.Tensor, clip_len: int, memory: OmniConfig | None = None) -> dict[str, torch.Tensor]:
        """Clips starting at idx [B] -> video [B, F, C, h, w], audio [B, F, Na, Ca], action [B, F, A],
        text [B, T], text_valid [B, T] (the text of each clip's last frame), prompt [B, T],
        prompt_valid [B, T] (its episode's description), and with `memory` (a
        config with memory_units > 0) the bank each clip's stream holds: memory_tokens
        [B, U, m, P], memory_frame [B, U] (relative to the clip's first context frame),
        memory_valid [B, U]."""
        rows = idx[:, None] + torch.arange(clip_len)[None]
        last = self.text_index[rows[:, -1]]
        prompt = self.prompt_index[rows[:, 0]]
        out = {"video": take(self.video, rows), "action": take(self.action, rows), "text": self.text_ids[last],
               "text_valid": self.text_valid[last], "prompt": self.text_ids[prompt], "prompt_valid": self.text_valid[prompt]}
        if self.audio is not None:
            out["audio"] = take(self.audio, rows)
        if memory is not None and memory.memory_units:
            out.update(self.memory_of(idx, memory))
        return out

    def memory_of(self, idx: torch.Tensor, cfg: OmniConfig) -> dict[str, torch.Tensor]:
        """The banks of clips starting at idx [B]: each the bank a stream holds when the clip's
        frame 0 has just left its window (every episode frame 1 .. that one offered in turn, as
        model/memory.py numbers them: episode frame e is e - 1), the same code the engine runs."""
        banks, firsts = [], []
        for i in idx.tolist():
            a = int(self.starts[torch.searchsorted(self.starts, torch.tensor(i), right=True) - 1])
            left = take(self.video, torch.arange(a + 1, i + 1)).float()  # episode frames 1 .. the clip's frame 0
            banks.append(bank_of_prefix(left, cfg.memory_units, cfg.memory_patch, cfg.memory_rule, cfg.memory_stride))
            firsts.append(i - a)  # the number of the clip's first context frame (episode frame i - a + 1)
        mem = MemoryBank.stack(banks).inputs(torch.tensor(firsts))
        return {"memory_tokens": mem.tokens, "memory_frame": mem.frame, "memory_valid": mem.valid}

    def save(self, path: Path) -> None:
        """A directory of .npy files, written under a temporary name and renamed when complete."""
        tmp = path.with_name(f".{path.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for k, v in self.__dict__.items():
            if v is not None:
                np.save(tmp / f"{k}.npy", v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)

    @classmethod
    def load(cls, path: Path) -> "Latents":
        """Memory-maps the large arrays (video, audio, action); the small ones are read."""
        if path.suffix == ".safetensors":  # the cache format of the first runs
            t = load_file(str(path))
            return cls(**{k: t.get(k) for k in FIELDS})
        fields = {}
        for k in FIELDS:
            f = path / f"{k}.npy"
            if f.exists():
                fields[k] = np.load(f, mmap_mode="r") if k in MAPPED else torch.from_numpy(np.load(f))
        return cls(**fields)


FIELDS = ("video", "action", "text_index", "text_ids", "text_valid", "starts", "audio", "prompt_index")
MAPPED = ("video", "action", "audio")


def take(array, rows: torch.Tensor) -> torch.Tensor:
    """Rows of a tensor or of a memory-mapped array, as a tensor."""
    if isinstance(array, torch.Tensor):
        return array[rows]
    return torch.from_numpy(np.ascontiguousarray(array[rows.numpy()]))


@torch.no_grad()
def encode_split(ds: Dataset, split: str, tok: WorldTokenizers, text_len: int) -> Latents:
    videos, audios, actions, text_index, prompt_index, starts = [], [], [], [], [], [0]
    table: dict[str, int] = {}
    for ep in ds.episodes(split):
        try:
            enc = tok.encode_episode(ep)
        except LiveworldError as e:
            raise LiveworldError(f"{ds.root}: {e}") from e
        videos.append(enc["video"])
        actions.append(enc["action"])
        if tok.audio is not None:
            audios.append(enc["audio"])
        text_index += [table.setdefault(s, len(table)) for s in enc["texts"]]
        prompt_index += [table.setdefault(enc["prompt"], len(table))] * len(ep)
        starts.append(starts[-1] + len(ep))
    if len(starts) == 1:
        raise LiveworldError(f"{ds.root} has no {split!r} episodes")
    ids, valid = tok.text_ids(list(table), text_len)
    return Latents(torch.cat(videos), torch.cat(actions), torch.tensor(text_index), ids, valid,
                   torch.tensor(starts), torch.cat(audios) if audios else None, torch.tensor(prompt_index))


def cached_latents(ds: Dataset, split: str, tok: WorldTokenizers, text_len: int, cache_dir: Path) -> Latents:
    """Encodes a split once; later runs (and --resume) memory-map the cache."""
    legacy = cache_dir / f"latents-{split}.safetensors"
    if legacy.exists():
        return Latents.load(legacy)
    path = cache_dir / f"latents-{split}"
    source = cache_dir / "source.json"
    here = str(ds.root.resolve())
    if (path / "video.npy").exists() and source.exists():
        was = json.loads(source.read_text()).get("dataset")
        if was != here:
            raise LiveworldError(f"{cache_dir} holds the latents of {was}, not of {here}; give the data sets in the order "
                                 f"the run was started with, or delete {cache_dir} to encode again")
    if not (path / "video.npy").exists():
        encode_split(ds, split, tok, text_len).save(path)
    if not source.exists():
        write_json_atomic(source, {"dataset": here})
    return Latents.load(path)


def fit_to_tokens(cfg: OmniConfig, lat: Latents, text_vocab: int) -> OmniConfig:
    """The model config with the shapes the tokenizers and the data dictate: video latent
    channels, action width, audio tokens per frame and their channels (none for a silent data
    set or a model asked to be silent), and a text table that holds every id. A preset chooses sizes and recipe; these it
    cannot choose, so `--preset tiny` trains with any tokenizers as they are."""
    silent = lat.audio is None or cfg.audio_tokens == 0  # audio_tokens 0: a model asked to be silent stays so
    audio_tokens, audio_channels = (0, cfg.audio_channels) if silent else tuple(lat.audio.shape[1:])
    return dataclasses.replace(cfg, video_channels=int(lat.video.shape[1]), action_dim=int(lat.action.shape[1]),
                               audio_tokens=int(audio_tokens), audio_channels=int(audio_channels),
                               text_vocab=max(cfg.text_vocab, int(text_vocab)))


def check_layout(lat: Latents, video_channels: int, audio_tokens: int, audio_channels: int, action_dim: int) -> None:
    if lat.video.shape[1] != video_channels:
        raise LiveworldError(f"the video tokenizer gives {lat.video.shape[1]} channels, the model expects {video_channels}; set --model.video_channels {lat.video.shape[1]}")
    if lat.action.shape[1] != action_dim:
        raise LiveworldError(f"actions are {lat.action.shape[1]} wide, the model expects {action_dim}; set --model.action_dim {lat.action.shape[1]}")
    if audio_tokens and lat.audio is None:
        raise LiveworldError("the dataset has no audio but the model expects audio tokens; set --model.audio_tokens 0")
    if lat.audio is not None and audio_tokens and tuple(lat.audio.shape[1:]) != (audio_tokens, audio_channels):
        raise LiveworldError(f"audio tokens are {tuple(lat.audio.shape[1:])}, the model expects {(audio_tokens, audio_channels)}; "
                             f"set --model.audio_tokens / --model.audio_channels")


def start_contexts(lat: Latents, count: int = 8, frames: int = 16) -> dict[str, torch.Tensor]:
    """The first `frames` frames of up to `count` episodes, as tokens: the real opening frames
    `play` starts streams from (start.safetensors in every checkpoint). video [K, F, C, h, w],
    action [K, F, A], audio [K, F, Na, Ca], text_ids / text_valid [K, T]."""
    starts = [a for a, b in zip(lat.starts[:-1].tolist(), lat.starts[1:].tolist()) if b - a >= frames][:count]
    if not starts:
        raise LiveworldError(f"no training episode has {frames} frames to open a stream with; record longer episodes")
    rows = torch.tensor(starts)[:, None] + torch.arange(frames)[None]
    out = {"video": take(lat.video, rows).contiguous(), "action": take(lat.action, rows).contiguous(),
           "text_ids": lat.text_ids[lat.text_index[rows[:, 0]]].contiguous(),
           "text_valid": lat.text_valid[lat.text_index[rows[:, 0]]].contiguous(),
           "prompt_ids": lat.text_ids[lat.prompt_index[rows[:, 0]]].contiguous(),
           "prompt_valid": lat.text_valid[lat.prompt_index[rows[:, 0]]].contiguous()}
    if lat.audio is not None:
        out["audio"] = take(lat.audio, rows).contiguous()
    return out


# ---------------------------------------------------------------------------------------------
# Several worlds in one model


@dataclass
class WorldData:
    """The training data of a run, one bucket per world: each world's tokens at its own latent
    grid (`lats`), its tokenizers (`toks`: the shared networks at the world's frame size, actions
    in the union's width) and what a checkpoint records of it (`metas`). One world is the
    special case with no union."""

    lats: dict[str, Latents]
    toks: dict[str, WorldTokenizers]
    metas: dict[str, dict]
    union: ActionUnion | None

    @property
    def names(self) -> list[str]:
        return list(self.lats)

    def bucket(self, step: int, micro: int, micros_per_step: int) -> str:
        """The world micro-batch `micro` of step `step` draws from: the worlds in turn over the
        run's micro-batches, so every world trains alike, and with several micro-batches a step
        (accumulation, or ranks) one optimiser step averages several grids."""
        return self.names[(step * micros_per_step + micro) % len(self.names)]


def group_by_world(sets: list[Dataset]) -> dict[str, list[Dataset]]:
    """Data sets by the world they record, in the order given; sets of one world must agree on
    its action space and frame rate."""
    groups: dict[str, list[Dataset]] = {}
    firsts: dict[str, dict] = {}
    for d in sets:
        meta = d.load(d.ids()[0]).meta
        w = meta["world"]
        if w in firsts and any(meta.get(k) != firsts[w].get(k) for k in ("action_space", "fps")):
            raise LiveworldError(f"{d.root} records {w} with another action space or frame rate than {groups[w][0].root}; "
                                 f"data sets of one world must agree")
        firsts.setdefault(w, meta)
        groups.setdefault(w, []).append(d)
    return groups


def world_frame_size(tokenizers: Path, world: str, native: tuple[int, int]) -> tuple[int, int] | None:
    """The frame size a tokenizer set codes `world` at: the one its video autoencoder was
    trained at for that world (`frame_sizes`), else (a world it has not seen) its native size
    scaled to the autoencoder's token count; None for a one-world autoencoder's own world."""
    from liveworld.tokenizers.video import frame_size_for

    meta = json.loads((Path(tokenizers) / "video" / "config.json").read_text())
    sizes = meta.get("frame_sizes") or {}
    if world in sizes:
        return tuple(sizes[world])
    if not sizes:
        return None
    cfg = meta["config"]
    f = 2 ** len(cfg["channels"])
    return frame_size_for(native, f, (cfg["frame_size"][0] // f) * (cfg["frame_size"][1] // f))


def load_worlds(sets: list[Dataset], tokenizers: str | Path, text_len: int, cache_root: Path,
                union: dict | None = None) -> WorldData:
    """Every world's tokens, encoded once per data set (cache_root/ for the first, cache_root/
    i-NAME for the others). `union`: the action union a resumed run was started with."""
    groups = group_by_world(sets)
    firsts = {w: g[0].load(g[0].ids()[0]) for w, g in groups.items()}
    spaces = {w: ActionSpace.from_dict(ep.meta["action_space"]) for w, ep in firsts.items()}
    au = None
    if union is not None:
        au = ActionUnion.from_dict(union)
        missing = [w for w in spaces if w not in au.encoders]
        if missing:
            raise LiveworldError(f"this run's model knows the worlds {list(au.encoders)}; {missing} cannot join it")
    elif len(groups) > 1:
        au = ActionUnion(spaces)
    order = {id(d): i for i, d in enumerate(sets)}
    lats, toks, metas = {}, {}, {}
    for w, g in groups.items():
        ep = firsts[w]
        H, W = ep.frames.shape[1:3]
        tok = WorldTokenizers(tokenizers, spaces[w], world_frame_size(tokenizers, w, (W, H)), au, w if au else None)
        parts = []
        for d in g:
            i = order[id(d)]
            parts.append(cached_latents(d, "train", tok, text_len, cache_root / (f"{i}-{d.root.name}" if i else "")))
        lats[w], toks[w] = Latents.concat(parts), tok
        meta = {k: ep.meta[k] for k in ("world", "fps", "action_space", "description", "audio_channels") if k in ep.meta}
        seeds = [e.seed for d in g for e in d.entries.values() if e.seed is not None]
        meta.update({"frame_size": list(tok.frame_size), "samples_per_frame": tok.samples_per_frame,
                     "dataset": ",".join(str(d.root.resolve()) for d in g), "seed_range": [min(seeds), max(seeds)] if seeds else None})
        if tok.audio is not None:  # the codec's S samples a frame, played at the world's frame rate
            meta["sample_rate_hz"] = int(round(tok.samples_per_frame * float(ep.meta["fps"]))) if au else ep.meta.get("sample_rate_hz")
            meta["audio_channels"] = tok.audio.cfg.channels
        metas[w] = meta
    return WorldData(lats, toks, metas, au)
