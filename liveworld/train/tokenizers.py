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

from liveworld.checkpoint import config_from_dict, load_state, read_checkpoint_meta, save_checkpoint
from liveworld.common import LiveworldError
from liveworld.data.arrays import split_audio, split_frames
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


def _video_task(ds: Dataset, preset: str, cfg_dict: dict | None) -> Task:
    from liveworld.tokenizers import video as V

    cfg = config_from_dict(V.VideoAutoencoderConfig, cfg_dict) if cfg_dict else _preset(V.PRESETS, preset)
    f = cfg.downsample
    if cfg.frame_size[0] % f or cfg.frame_size[1] % f:
        raise LiveworldError(f"frame_size {cfg.frame_size} must be a multiple of {f}")
    train, val = split_frames(ds, "train", cfg.frame_size), split_frames(ds, "val", cfg.frame_size, 1024)

    def loss(model, batch):
        x = batch.float().div_(255)
        y, _ = model(x)
        return F.mse_loss(y, x) + 0.2 * F.l1_loss(y, x)

    @torch.no_grad()
    def evaluate(model, val):
        ps = [V.psnr_db(model.decode(model.encode(b.float() / 255)), b.float() / 255) for b in val.split(128)]
        return {"val_psnr_db": round(torch.cat(ps).mean().item(), 3)}

    @torch.no_grad()
    def finalize(model, train):
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:2048]
        z = torch.cat([model.encode_raw(b.float() / 255) for b in train[idx].split(256)])
        model.latent_mean.copy_(z.mean((0, 2, 3)))
        model.latent_std.copy_(z.std((0, 2, 3)).clamp_min(1e-4))

    return Task("video_autoencoder", cfg, V.VideoAutoencoder(cfg), train, val, 32, 5e-4, loss, evaluate, finalize, {})


def _audio_task(ds: Dataset, preset: str, cfg_dict: dict | None) -> Task:
    from liveworld.tokenizers import audio as A

    train, rate, length = split_audio(ds, "train")
    val, _, _ = split_audio(ds, "val", 2048)
    base = config_from_dict(A.AudioCodecConfig, cfg_dict) if cfg_dict else _preset(A.PRESETS, preset)
    cfg = base if cfg_dict else A.fit_config(base, rate, length, train.shape[1])
    model = A.AudioCodec(cfg)

    def loss(model, batch):
        x = A.to_float(batch)
        return A.codec_loss(model(x)[0], x)

    @torch.no_grad()
    def evaluate(model, val):
        return A.audio_metrics(model, val)

    return Task("audio_codec", cfg, model, train, val, 64, 1e-3, loss, evaluate, lambda m, t: None, {})


def _preset(presets: dict, name: str):
    if name not in presets:
        raise LiveworldError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return presets[name]


def train_tokenizer(modality: str, data: str, out: str, minutes: float | None = None, steps: int | None = None,
                    resume: bool = False, preset: str = "default", seed: int = 0, save_every_s: float = 120.0,
                    progress: bool = True) -> dict:
    if modality == "text":
        from liveworld.tokenizers.text import train_text_tokenizer

        return train_text_tokenizer(Dataset.open(data), out)
    if minutes is None and steps is None:
        raise LiveworldError("give a budget: --minutes M and/or --steps N")
    out_path = Path(out)
    ds = Dataset.open(data)
    meta, state = None, None
    if resume:
        if not (out_path / "train_state.json").exists():
            raise LiveworldError(f"nothing to resume in {out}: it has no train_state.json; drop --resume to start a new run")
        meta = read_checkpoint_meta(out_path)
        state = load_state(out_path, "train_state")
    elif (out_path / "config.json").exists():
        raise LiveworldError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")

    torch.manual_seed(seed)
    task = {"video": _video_task, "audio": _audio_task}[modality](ds, preset, meta["config"] if meta else None)
    model = task.model
    opt = torch.optim.AdamW(model.parameters(), lr=task.lr, betas=(0.9, 0.99), weight_decay=0.0)
    trainer = Trainer(model, opt, task.lr, warmup=200, steps=steps if steps is not None else math.inf,
                      minutes=minutes or 0.0, ema_decay=0.999, floor=0.05)
    gen = torch.Generator().manual_seed(seed)
    if state is not None:
        trainer.restore(state, json.loads((out_path / "train_state.json").read_text()))
        gen.set_state(state["rng"])
    params = sum(p.numel() for p in model.parameters())
    print(f"{task.kind}: {params / 1e6:.2f} M parameters, {len(task.train):,} train / {len(task.val):,} val items, "
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
        idx = torch.randint(len(task.train), (task.batch_size,), generator=gen)
        loss = task.loss(model, task.train[idx])
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
