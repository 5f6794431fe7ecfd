"""`liveworld train-tokenizer`: train the video autoencoder or the audio codec on a dataset, or
the text BPE on its texts.

One small loop for both networks on the skeleton every run shares (train/optim.Trainer):
batches drawn from the whole train split held in memory, AdamW with warm-up and a cosine decay
over the budget (minutes or steps, whichever is given: a time budget makes "the best model in 30
minutes" a well-defined thing), an EMA of the weights (the EMA is what gets saved and
evaluated), and an atomic checkpoint every `save_every_s` with the optimiser state, so
`--resume` after a kill continues the same run.

This module knows how to train a tokenizer; what a tokenizer computes lives in tokenizers/.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from liveworld.checkpoint import config_from_dict, load_into, load_state, read_checkpoint_meta, save_checkpoint
from liveworld.common import LiveworldError
from liveworld.data.arrays import gather_frames, split_audio, split_frames
from liveworld.eval.metrics import psnr_db  # a ground-floor metric (tests/test_imports.py)
from liveworld.data.shards import Dataset
from liveworld.train.optim import Trainer


@dataclass
class Task:
    """What differs between modalities: the model, its data, its loss and its metrics."""

    kind: str
    config: Any
    model: torch.nn.Module
    train: torch.Tensor
    val: torch.Tensor
    batch_size: int
    lr: float
    loss: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
    evaluate: Callable[[torch.nn.Module, torch.Tensor], dict]
    finalize: Callable[[torch.nn.Module, torch.Tensor], None]
    extra: dict


def world_frame_sizes(sets: list[Dataset], cfg) -> dict[str, tuple[int, int]]:
    """Each data set's world and the (W, H) its frames are coded at: one data set at the
    config's frame size (as before), several each at its own native aspect ratio with about the
    token count of that frame size (tokenizers/video.frame_size_for), no padding, no cropping."""
    worlds = {}
    for d in sets:
        ep = d.load(d.ids()[0])
        H, W = ep.frames.shape[1:3]
        worlds[d.root.name if ep.meta["world"] in worlds else ep.meta["world"]] = (W, H)
    if len(sets) == 1:
        return {w: tuple(cfg.frame_size) for w in worlds}
    from liveworld.tokenizers.video import frame_size_for

    f = cfg.downsample
    tokens = (cfg.frame_size[0] // f) * (cfg.frame_size[1] // f)
    return {w: frame_size_for(native, f, tokens) for w, native in worlds.items()}


def _video_task(sets: list[Dataset], preset: str, cfg_dict: dict | None) -> Task:
    from liveworld.tokenizers import video as V

    cfg = config_from_dict(V.VideoAutoencoderConfig, cfg_dict) if cfg_dict else _preset(V.PRESETS, preset)
    f = cfg.downsample
    if cfg.frame_size[0] % f or cfg.frame_size[1] % f:
        raise LiveworldError(f"frame_size {cfg.frame_size} must be a multiple of {f}")
    sizes = world_frame_sizes(sets, cfg)
    # One bucket per world, each at its own size: a batch is drawn from one bucket.
    train = [split_frames(d, "train", s) for d, s in zip(sets, sizes.values())]
    val = [split_frames(d, "val", s, 1024) for d, s in zip(sets, sizes.values())]

    def loss(model, batch):
        x = batch.float().div_(255)
        y, _ = model(x)
        return F.mse_loss(y, x) + 0.2 * F.l1_loss(y, x)

    @torch.no_grad()
    def evaluate(model, val):
        per = {w: torch.cat([psnr_db(model.decode(model.encode(b.float() / 255)), b.float() / 255) for b in v.split(128)]).mean().item()
               for w, v in zip(sizes, val)}
        out = {"val_psnr_db": round(sum(per.values()) / len(per), 3)}
        if len(per) > 1:
            out["val_psnr_db_by_world"] = {w: round(p, 3) for w, p in per.items()}
        return out

    @torch.no_grad()
    def finalize(model, train):  # latent statistics over every world, each weighted alike
        g = torch.Generator().manual_seed(0)
        z = []
        for x in train:
            idx = torch.randperm(len(x), generator=g)[: 2048 // len(train)]
            z.append(torch.cat([model.encode_raw(b.float() / 255) for b in x[idx].split(256)]).permute(1, 0, 2, 3).flatten(1))
        z = torch.cat(z, 1)  # [C, n]
        model.latent_mean.copy_(z.mean(1))
        model.latent_std.copy_(z.std(1).clamp_min(1e-4))

    extra = {"frame_sizes": {w: list(s) for w, s in sizes.items()}} if len(sets) > 1 else {}
    return Task("video_autoencoder", cfg, V.VideoAutoencoder(cfg), train, val, 32, 5e-4, loss, evaluate, finalize, extra)


def _audio_windows(sets: list[Dataset], split: str, cfg, max_frames: int | None = None) -> torch.Tensor:
    """Every frame's window of a lapped codec, int16 [N, C, S + 2O], consecutive within each
    episode (so that played back they make the episode's stream), from every data set with sound,
    each resampled to the codec's S samples a frame."""
    from liveworld.tokenizers.audio import episode_windows

    windows = (episode_windows(ep.audio, len(ep), cfg).round().clamp(-32768, 32767).to(torch.int16)
               for d in sets for ep in d.episodes(split) if ep.has_audio)
    return gather_frames(windows, max_frames, f"no {split!r} episode of {', '.join(str(d.root) for d in sets)} has sound; "
                                              f"record a world with sound (doom:, atari:)")


def _audio_task(sets: list[Dataset], preset: str, cfg_dict: dict | None) -> Task:
    from liveworld.tokenizers import audio as A

    base = config_from_dict(A.AudioCodecConfig, cfg_dict) if cfg_dict else _preset(A.PRESETS, preset)
    if base.overlap_tokens:  # a lapped codec: windows that reach into the neighbours, any number of worlds
        with_sound = [d for d in sets if any(e.has_audio for e in d.episodes("val"))] or sets
        _, rate, length = split_audio(with_sound[0], "val", 64)
        first = with_sound[0].load(with_sound[0].ids()[0]).audio.shape[1]
        cfg = base if cfg_dict else A.fit_config(base, rate, length, first)
        train, val = _audio_windows(with_sound, "train", cfg), _audio_windows(with_sound, "val", cfg, 2048)
    else:
        if len(sets) > 1:
            raise LiveworldError("a codec that codes frames alone trains on one data set; give one, or use --preset lapped")
        train, rate, length = split_audio(sets[0], "train")
        val, _, _ = split_audio(sets[0], "val", 2048)
        cfg = base if cfg_dict else A.fit_config(base, rate, length, train.shape[1])
    model = A.AudioCodec(cfg)

    def loss(model, batch):
        x = A.to_float(batch)
        # a lapped codec's window is judged whole, its edges no more than its middle: the
        # cross-fade joins them (a loss on the cross-faded join measured worse, docs/RESULTS.md)
        return A.codec_loss(model(x)[0], x, edge_weight=0.0 if cfg.overlap_tokens else 16.0)

    @torch.no_grad()
    def evaluate(model, val):
        return A.audio_metrics(model, val[0])

    return Task("audio_codec", cfg, model, [train], [val], 64, 1e-3, loss, evaluate, lambda m, t: None, {})


def _preset(presets: dict, name: str):
    if name not in presets:
        raise LiveworldError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return presets[name]


def train_tokenizer(modality: str, data: str, out: str, minutes: float | None = None, steps: int | None = None,
                    resume: bool = False, preset: str = "default", seed: int = 0, save_every_s: float = 120.0,
                    progress: bool = True, init: str | None = None) -> dict:
    """`init`: a tokenizer checkpoint to start from (its config is kept): a tokenizer of one
    world grows into one of several worlds in minutes rather than the half hour from scratch."""
    if modality == "text":
        from liveworld.tokenizers.text import train_text_tokenizer

        return train_text_tokenizer([Dataset.open(d) for d in data.split(",")], out)
    if minutes is None and steps is None:
        raise LiveworldError("give a budget: --minutes M and/or --steps N")
    out_path = Path(out)
    sets = [Dataset.open(d) for d in data.split(",")]  # DIR or DIR1,DIR2,...: one tokenizer for several worlds
    meta, state = None, None
    if resume:
        if not (out_path / "train_state.json").exists():
            raise LiveworldError(f"nothing to resume in {out}: it has no train_state.json; drop --resume to start a new run")
        meta = read_checkpoint_meta(out_path)
        state = load_state(out_path, "train_state")
    elif (out_path / "config.json").exists():
        raise LiveworldError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")

    if init is not None and meta is None:
        meta = read_checkpoint_meta(init)
        if meta.get("kind") != {"video": "video_autoencoder", "audio": "audio_codec"}[modality]:
            raise LiveworldError(f"--init {init} holds a {meta.get('kind')!r} checkpoint, not a {modality} tokenizer")
    torch.manual_seed(seed)
    task = {"video": _video_task, "audio": _audio_task}[modality](sets, preset, meta["config"] if meta else None)
    model = task.model
    if init is not None and state is None:
        load_into(model, init)
    opt = torch.optim.AdamW(model.parameters(), lr=task.lr, betas=(0.9, 0.99), weight_decay=0.0)
    trainer = Trainer(model, opt, task.lr, warmup=200, steps=steps if steps is not None else math.inf,
                      minutes=minutes or 0.0, ema_decay=0.999, floor=0.05)
    gen = torch.Generator().manual_seed(seed)
    if state is not None:
        trainer.restore(state, json.loads((out_path / "train_state.json").read_text()))
        gen.set_state(state["rng"])
    params = sum(p.numel() for p in model.parameters())
    print(f"{task.kind}: {params / 1e6:.2f} M parameters, {sum(map(len, task.train)):,} train / {sum(map(len, task.val)):,} val items"
          + (f" in {len(task.train)} buckets" if len(task.train) > 1 else "") + f", "
          f"budget {minutes or '-'} min / {steps or '-'} steps" + (f", resuming at step {trainer.step}" if trainer.step else ""))

    def save(final: bool = False) -> dict:
        model_ema = task.model.__class__(task.config)
        model_ema.load_state_dict(trainer.ema)
        model_ema.eval()
        task.finalize(model_ema, task.train)
        metrics = {**task.evaluate(model_ema, task.val), "step": trainer.step, "train_minutes": round(trainer.elapsed / 60, 2)}
        ts = trainer.state_tensors()
        ts["rng"] = gen.get_state()
        save_checkpoint(out_path, task.kind, task.config, model_ema.state_dict(), extra={"metrics": metrics, **task.extra},
                        train_state=ts, train_info=trainer.info(final=final))
        return metrics

    model.train()
    trainer.sync_elapsed(trainer.elapsed)  # the clock counts training, not the set-up before it
    bar = tqdm(disable=not progress, desc=task.kind, unit="step", initial=trainer.step, mininterval=1 if sys.stderr.isatty() else 30)
    last_save = time.perf_counter()
    while not trainer.done():
        lr = trainer.set_lr()
        bucket = task.train[trainer.step % len(task.train)]  # worlds in turn, each batch at one shape
        idx = torch.randint(len(bucket), (task.batch_size,), generator=gen)
        loss = task.loss(model, bucket[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        trainer.update()
        bar.update(1)
        if trainer.step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.1e}", min=f"{trainer.elapsed / 60:.1f}")
        if time.perf_counter() - last_save > save_every_s:
            m = save()
            bar.write(f"step {trainer.step} ({trainer.elapsed / 60:.1f} min): {m}")
            last_save = time.perf_counter()
    bar.close()
    metrics = save(final=True)
    print(f"done: {metrics} -> {out_path}")
    return metrics
