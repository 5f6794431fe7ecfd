"""`liveworld train`: the one training loop, from one CPU to many GPUs under torchrun.

    OUT/checkpoint/   what play/eval load: model.safetensors (EMA weights) + config.json, the
                      world's tokenizers in tokenizers/, and train_state.* for --resume
    OUT/cache/        the dataset's tokens, encoded once by the frozen tokenizers
    OUT/tb/           TensorBoard logs

The global batch is split into micro-batches, numbered across ranks and gradient-accumulation
steps; micro-batch m of step s draws its clips and its noise from a generator seeded with
(seed, s, m). So 2 processes of micro-batch b compute exactly what 1 process accumulating 2
micro-batches of b computes (the DDP test checks it), and a resumed run draws what the killed
one would have drawn.

Knows optimisation, checkpoints and processes; the objective and the model live elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from liveworld.checkpoint import config_from_dict, config_to_dict, load_state, read_checkpoint_meta, save_checkpoint
from liveworld.common import LiveworldError, default_device
from liveworld.data.shards import Dataset
from liveworld.model.omni import OmniConfig, OmniWorldModel
from liveworld.train.config import RunConfig, TrainConfig
from liveworld.train.data import WorldData, check_layout, fit_to_tokens, load_worlds, start_contexts
from liveworld.train.adversarial import Adversary, CriticConfig, PixelCritic
from liveworld.train.objective import clip_frames, world_loss
from liveworld.world import OPENINGS, WORLD_KIND, load_world_model, write_openings
from liveworld.train.optim import Trainer



def run_config_from_meta(meta: dict) -> RunConfig:
    run = meta["run"]
    return RunConfig(preset=run["preset"], model=config_from_dict(OmniConfig, run["model"]),
                     train=config_from_dict(TrainConfig, run["train"]))


def _dist_setup() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    device = default_device()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return rank, world, device


@torch.no_grad()
def init_from(model: OmniWorldModel, start: OmniWorldModel, world: str, union) -> None:
    """`model` takes `start`'s weights wherever the shapes agree; the action projections, wider
    in a model over several worlds, take the start's columns into `world`'s block of the union
    (the other worlds' columns start at zero: their actions begin as 'no action'); a larger text
    table keeps the start's rows."""
    own = start.state_dict()
    cols = union.block(world) if union is not None and world in union.encoders else slice(0, start.cfg.action_dim)
    for name, p in model.state_dict().items():
        q = own.get(name)
        if q is None:
            continue
        if q.shape == p.shape:
            p.copy_(q)
        elif name.endswith("weight") and q.ndim == 2 and q.shape[0] == p.shape[0] and q.shape[1] == cols.stop - cols.start:
            p.zero_()
            p[:, cols] = q
        elif q.ndim == 2 and q.shape[1] == p.shape[1] and q.shape[0] < p.shape[0]:  # text rows
            p[: q.shape[0]] = q
        else:
            raise LiveworldError(f"cannot start from a model whose {name} is {tuple(q.shape)}: this run's is {tuple(p.shape)}")


def micro_generator(seed: int, step: int, micro: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 4099 + micro)


def train(data: str, out: str, run: RunConfig, tokenizers: str, resume: bool = False,
          progress: bool = True, max_steps: int | None = None, teacher_path: str | None = None,
          init: str | None = None) -> dict:
    """Trains a world model into `out`. With `teacher_path` (distillation) the model starts from
    that world's weights and the frozen teacher supplies the guidance targets. With `init` a new
    run starts from another world's weights and model config (`init_from`)."""
    rank, world, device = _dist_setup()
    out_path = Path(out)
    ckpt = out_path / "checkpoint"
    state = None
    if resume:
        if not (ckpt / "train_state.json").exists():
            raise LiveworldError(f"nothing to resume in {out}: no checkpoint/train_state.json; drop --resume to start")
        meta = read_checkpoint_meta(ckpt, WORLD_KIND)
        run = run_config_from_meta(meta)
        state = load_state(ckpt, "train_state")
        info = json.loads((ckpt / "train_state.json").read_text())
        tokenizers = str(ckpt / "tokenizers")
        teacher_path = meta.get("teacher")
    elif (ckpt / "config.json").exists():
        raise LiveworldError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    cfg, tcfg = run.model, run.train
    # DIR or DIR1,DIR2,...: data sets of one world train as one; of several worlds, as one model
    # over all of them, one bucket per world at its own latent grid (train/data.py, WorldData).
    sets = [Dataset.open(d) for d in data.split(",")]

    def encoded() -> WorldData:
        return load_worlds(sets, tokenizers, cfg.text_len, out_path / "cache", union=state_union)

    state_union = meta.get("action_union") if state is not None else None
    wd = encoded() if rank == 0 or world == 1 else None
    if world > 1:
        dist.barrier()
        if wd is None:
            wd = encoded()
    lat = next(iter(wd.lats.values()))
    start = None
    if init is not None and state is None:
        start, start_meta = load_world_model(init)
        cfg = start.cfg
    if state is None and teacher_path is None:  # a new run: the shapes come from the tokenizers and data
        fitted = fit_to_tokens(cfg, lat, max(t.text.vocab_size for t in wd.toks.values()))
        if fitted != cfg and rank == 0:
            changed = [f"{f.name} {getattr(cfg, f.name)} -> {getattr(fitted, f.name)}" for f in dataclasses.fields(cfg)
                       if getattr(cfg, f.name) != getattr(fitted, f.name)]
            print(f"model shapes from the tokenizers and data: {', '.join(changed)}")
        cfg = fitted
        run = dataclasses.replace(run, model=cfg)
    for w, lw in wd.lats.items():
        check_layout(lw, cfg.video_channels, cfg.audio_tokens, cfg.audio_channels, cfg.action_dim)
    clip_len = clip_frames(cfg, tcfg)
    starts = {w: lw.clip_starts(clip_len) for w, lw in wd.lats.items()}
    tok = next(iter(wd.toks.values()))

    micro = tcfg.micro_batch or tcfg.batch_size // world
    if micro < 1 or tcfg.batch_size % (micro * world):
        raise LiveworldError(f"batch_size {tcfg.batch_size} must be a multiple of micro-batch {micro} x {world} processes")
    accum = tcfg.batch_size // (micro * world)

    torch.manual_seed(tcfg.seed)
    model = OmniWorldModel(cfg).to(device)
    teacher = None
    if teacher_path is not None:
        teacher, tmeta = load_world_model(teacher_path, device)
        if teacher.cfg != cfg:
            raise LiveworldError(f"the teacher {teacher_path} has another model config than this run; distill from it without --model overrides")
        teacher.requires_grad_(False)
        model.load_state_dict(teacher.state_dict())
        teacher_path = tmeta["path"]
    if start is not None:
        init_from(model, start, start_meta["world"]["world"], wd.union)
        if rank == 0:
            print(f"started from {start_meta['path']}")
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in n else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=tcfg.lr, betas=(0.9, 0.95))
    # The schedule's length is tcfg.steps / tcfg.minutes; max_steps only stops early (tests, kills).
    trainer = Trainer(model, opt, tcfg.lr, tcfg.warmup_steps, steps=tcfg.steps, minutes=tcfg.minutes,
                      ema_decay=tcfg.ema_decay, floor=0.1)
    adversary = None
    if tcfg.p_adversarial > 0:
        torch.manual_seed(tcfg.seed + 1)
        tok.video.to(device).requires_grad_(False)
        adversary = Adversary(PixelCritic().to(device), CriticConfig(), tcfg.adv_weight, decode=tok.video.decode)
    if state is not None:
        trainer.restore(state, info)
        if adversary is not None:
            adversary.restore(state)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    fwd = torch.compile(ddp) if tcfg.compile and device.type == "cuda" else ddp
    use_bf16 = tcfg.precision == "bf16" or (tcfg.precision == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext

    world_meta = next(iter(wd.metas.values()))  # the first world: what play and eval open by default
    many = {"worlds": wd.metas, "action_union": wd.union.to_dict()} if wd.union is not None else {}
    stop_step = max_steps or math.inf
    params = sum(p.numel() for p in model.parameters())
    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_path / "tb"))
        per = ", ".join(f"{w} {len(st):,} at {tuple(wd.lats[w].video.shape[2:])}" for w, st in starts.items())
        print(f"world model: {params / 1e6:.2f} M parameters, clips of {clip_len} frames ({per}), "
              f"batch {tcfg.batch_size} = {world} x {accum} x {micro}, device {device}"
              + (f", resuming at step {trainer.step}" if trainer.step else ""))

    # The tokenizers travel inside every checkpoint. They are copied aside once, because each save
    # replaces the checkpoint directory (and on --resume they come from inside it).
    staging = out_path / ".tokenizers-staging"
    openings = out_path / f".{OPENINGS}"  # the opening frames `play` starts streams from
    if rank == 0:
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(tokenizers, staging, ignore=shutil.ignore_patterns("train_state*"))
        write_openings(openings, {None: start_contexts(lat)} if wd.union is None
                       else {w: start_contexts(lw) for w, lw in wd.lats.items()})

    def save(final: bool = False, metrics: dict | None = None) -> None:
        if rank != 0:
            return
        ema_model = {k: v.detach().cpu() for k, v in trainer.ema.items()}
        extra = {"run": {"preset": run.preset, "model": config_to_dict(cfg), "train": config_to_dict(tcfg)},
                 "world": world_meta, **many, "step": trainer.step, "train_minutes": round(trainer.elapsed / 60, 2), "params": params,
                 **({"teacher": teacher_path} if teacher_path else {}),
                 **({"metrics": metrics} if metrics else {})}
        train_state = trainer.state_tensors()
        if adversary is not None:
            train_state.update(adversary.state_tensors())
        save_checkpoint(ckpt, WORLD_KIND, cfg, ema_model, extra=extra, train_state=train_state,
                        train_info=trainer.info(final=final),
                        extra_dirs={"tokenizers": staging}, extra_files={OPENINGS: openings})

    model.train()
    trainer.sync_elapsed(trainer.elapsed)  # the clock counts training, not the set-up before it
    bar = tqdm(disable=not progress or rank != 0, desc="train", unit="step",
               initial=trainer.step, mininterval=1 if sys.stderr.isatty() else 30)
    samples_t, samples_n = time.perf_counter(), 0
    stats: dict[str, float] = {}
    while not trainer.done(stop_step):
        step = trainer.step
        lr = trainer.set_lr()
        opt.zero_grad(set_to_none=True)
        acc: dict[str, float] = {}
        for a in range(accum):
            m = rank * accum + a
            gen = micro_generator(tcfg.seed, step, m)
            w = wd.bucket(step, m, accum * world)  # one world, one grid per micro-batch
            idx = starts[w][torch.randint(len(starts[w]), (micro,), generator=gen)]
            clip = {k: v.to(device) for k, v in wd.lats[w].clip(idx, clip_len, cfg).items() if k != "audio" or cfg.audio_tokens}
            sync = ddp.no_sync() if world > 1 and a < accum - 1 else nullcontext()
            with sync, autocast():
                loss, st = world_loss(fwd, clip, cfg, tcfg, gen, teacher=teacher, adversary=adversary)
                (loss / accum).backward()
            for k, v in st.items():
                acc[k] = acc.get(k, 0.0) + v / accum
        trainer.update()
        if adversary is not None:
            acc.update(adversary.step())
        step = trainer.step
        if world > 1:
            t = torch.tensor([acc[k] for k in sorted(acc)], dtype=torch.float64)
            dist.all_reduce(t)
            acc = {k: float(v) / world for k, v in zip(sorted(acc), t)}
        stats = acc
        samples_n += tcfg.batch_size
        if world > 1:  # every rank stops at the same step
            e = torch.tensor([trainer.elapsed], dtype=torch.float64)
            dist.broadcast(e, 0)
            trainer.sync_elapsed(float(e))
        bar.update(1)
        if rank == 0 and step % tcfg.log_every_steps == 0:
            sps = samples_n / (time.perf_counter() - samples_t)
            samples_t, samples_n = time.perf_counter(), 0
            bar.set_postfix(loss=f"{acc['loss']:.4f}", lr=f"{lr:.1e}", samples_s=f"{sps:.1f}", min=f"{trainer.elapsed / 60:.1f}")
            for k, v in acc.items():
                writer.add_scalar(f"train/{k}", v, step)
            writer.add_scalar("train/lr", lr, step)
            writer.add_scalar("train/samples_per_s", sps, step)
        if step % tcfg.save_every_steps == 0:
            save()
            if world > 1:
                dist.barrier()
    bar.close()
    save(final=True)
    if world > 1:
        dist.barrier()
    if writer is not None:
        writer.close()
        print(f"done: step {trainer.step}, {trainer.elapsed / 60:.1f} min, last loss {stats.get('loss', float('nan')):.4f} -> {ckpt}")
    return {"step": trainer.step, "elapsed_s": trainer.elapsed, **stats}
