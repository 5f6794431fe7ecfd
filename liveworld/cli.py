"""`liveworld <stage>`: one subcommand per stage of the data path.

    record           play a world with a policy and store episodes       (data/)
    ingest           turn video files into the same dataset                (data/)
    data info        what a dataset holds                                  (data/)
    train-tokenizer  train the video autoencoder or the audio codec       (tokenizers/)
    train            train the Omni world model (torchrun for many GPUs)   (model/, flow/, train/)
    play             the world in the browser, or --headless to a video     (engine/, serve/)
    eval             fidelity, rollouts, controllability, stability        (eval/)
    bench            record, tokenizers, engine, serve, train benchmarks   (bench/)

Each subcommand imports its stage lazily so `liveworld --help` stays instant. A LiveworldError
is printed as one line without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import json
import sys

from liveworld.common import LiveworldError, setup_cpu_threads


def _record(args: argparse.Namespace) -> None:
    from liveworld.data.record import record

    stats = record(args.world, args.episodes, args.steps, args.out, args.policy, args.seed, args.val_every,
                   repair=args.repair)
    fixed = f" ({stats.repaired} of them missing or corrupt before)" if stats.repaired else ""
    print(f"recorded {stats.episodes} episodes{fixed}, {stats.frames:,} frames in {stats.seconds:.1f} s "
          f"({stats.fps:,.0f} frames/s); {stats.skipped} already there -> {args.out}")


def _ingest(args: argparse.Namespace) -> None:
    from liveworld.data.ingest import ingest

    n = ingest(args.files, args.out, sidecars=args.sidecar, fps=args.fps, max_side=args.max_side)
    print(f"ingested {n} files -> {args.out}")


def _data_info(args: argparse.Namespace) -> None:
    from liveworld.data.info import dataset_info, format_info

    from liveworld.data.info import repair_command

    info = dataset_info(args.dir)
    print(json.dumps(info) if args.json else format_info(info))
    if info["corrupt"]:
        print(f"{len(info['corrupt'])} episode(s) missing or corrupt; repair them with:\n  {repair_command(args.dir)}", file=sys.stderr)
        sys.exit(1)


def _train_tokenizer(args: argparse.Namespace) -> None:
    from liveworld.data.info import check_dataset
    from liveworld.train.tokenizers import train_tokenizer

    check_dataset(args.data)
    train_tokenizer(args.modality, args.data, args.out, minutes=args.minutes, steps=args.steps,
                    resume=args.resume, preset=args.preset, seed=args.seed, init=args.init)


def _train(args: argparse.Namespace) -> None:
    from liveworld.train.config import apply_overrides, preset

    run = apply_overrides(preset(args.preset), args.overrides)
    if args.data is not None:
        from liveworld.data.info import check_dataset

        check_dataset(args.data)
    if args.dry_run:
        import dataclasses

        print(json.dumps(dataclasses.asdict(run), indent=2))
        return
    if args.data is None or args.out is None:
        raise LiveworldError("train needs --data DIR and --out RUN")
    tokenizers = args.tokenizers
    if tokenizers is None and not args.resume:
        from liveworld.bundled import bundled_tokenizers_dir

        tokenizers = str(bundled_tokenizers_dir())
    from liveworld.train.loop import train

    train(args.data, args.out, run, tokenizers, resume=args.resume, init=args.init)


def trained_on(meta: dict) -> str | None:
    """The data sets a checkpoint trained on, DIR1,DIR2,...: every world's."""
    worlds = meta.get("worlds") or ({"": meta["world"]} if "world" in meta else {})
    dirs = [w.get("dataset") for w in worlds.values() if w.get("dataset")]
    return ",".join(dirs) or None


def _distill(args: argparse.Namespace) -> None:
    import dataclasses

    from liveworld.train.config import apply_overrides, distill_config
    from liveworld.world import resolve_checkpoint

    if args.out is None:
        raise LiveworldError("distill needs --out RUN2 (a new run directory)")
    from liveworld.train.loop import run_config_from_meta, train
    from liveworld.checkpoint import read_checkpoint_meta

    if args.resume:
        meta = read_checkpoint_meta(resolve_checkpoint(args.out), "world_model") if (Path(args.out) / "checkpoint").exists() else {}
        data = args.data or trained_on(meta)
        if not data:
            raise LiveworldError(f"nothing to resume in {args.out}; drop --resume to start")
        train(data, args.out, None, "", resume=True)
        return
    if args.run is None:
        raise LiveworldError("distill needs the teacher's run directory: liveworld distill RUN --out RUN2")
    ckpt = resolve_checkpoint(args.run)
    meta = read_checkpoint_meta(ckpt, "world_model")
    if "run" not in meta:
        raise LiveworldError(f"{args.run} carries no training recipe (an exported world?); distill from its run directory")
    teacher_run = run_config_from_meta(meta)
    run = dataclasses.replace(teacher_run, train=distill_config(teacher_run.train, args.minutes))
    run = apply_overrides(run, args.overrides)
    if args.dry_run:
        print(json.dumps(dataclasses.asdict(run), indent=2))
        return
    data = args.data or trained_on(meta)
    if not data:
        raise LiveworldError("pass --data DIR: the teacher's checkpoint does not name its dataset")
    from liveworld.data.info import check_dataset

    check_dataset(data)
    train(data, args.out, run, str(ckpt / "tokenizers"), teacher_path=str(ckpt))


def _eval(args: argparse.Namespace) -> None:
    from liveworld.eval.worlds import run_eval

    for flag in ("positions", "starts", "streams", "stream_frames", "episodes"):
        if getattr(args, flag) < 0:
            raise LiveworldError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    run_eval(_checkpoint(args.checkpoint), args.data, as_json=args.json, world=args.world, steps=args.steps,
             positions=args.positions, starts=args.starts, streams=args.streams, stream_frames=args.stream_frames,
             report=args.report, seed=args.seed, guidance=args.guidance, solver=args.solver, split=args.split,
             episodes=args.episodes, revisit=args.revisit, revisit_count=args.revisit_episodes)


def _play(args: argparse.Namespace) -> None:
    from liveworld.engine.runner import WorldEngine
    from liveworld.serve.play import headless, serve

    if args.max_players < 1 or args.idle_timeout <= 0:
        raise LiveworldError(f"--max-players must be >= 1 and --idle-timeout > 0 seconds, got {args.max_players} and {args.idle_timeout}")
    engine = WorldEngine.load(args.checkpoint, device=args.device, steps=args.steps, threads=args.threads,
                              solver=args.solver, guidance=args.guidance, world=args.world)
    if args.headless:
        headless(engine, args.frames, args.actions, args.out, seed=args.seed, prompt=args.prompt)
        return
    from liveworld.world import world_names

    names = world_names(engine.meta)
    if len(names) > 1 and args.world is None:  # every world of the checkpoint, one model shared
        engines = {w: WorldEngine.for_world(engine.model, engine.meta, w, engine.device, args.steps, args.solver, args.guidance)
                   for w in names}
    else:
        engines = engine
    serve(engines, args.host, args.port, args.fps, args.seed, token=args.token, allow_origins=tuple(args.allow_origin),
          api_docs=args.api_docs, max_clients=args.max_players, idle_timeout=args.idle_timeout, prompt=args.prompt)


def _export(args: argparse.Namespace) -> None:
    from liveworld.train.export import export_world

    if not args.run and not args.tokenizers:
        raise LiveworldError("export needs a run directory or --tokenizers DIR")
    export_world(args.run, args.out, half=not args.fp32, tokenizers_only=args.tokenizers, steps=args.steps)


def _checkpoint(path: str | None) -> str:
    if path is not None:
        return path
    from liveworld.bundled import bundled_checkpoint

    return str(bundled_checkpoint())


def _bench(args: argparse.Namespace) -> None:
    if args.what == "engine" and args.memory_units and not args.stream:
        from liveworld.bench.engine import bench_memory

        bench_memory(args.checkpoint, units=args.memory_units, top_k=args.top_k, frames=args.frames or 60, threads=args.threads)
        return
    if args.what == "engine":
        from liveworld.bench.engine import bench_engine

        bench_engine(args.checkpoint, frames=args.frames or 300, steps=args.steps_engine, threads=args.threads,
                     guidance=args.guidance, memory_units=args.memory_units, top_k=args.top_k)
        return
    if args.what == "serve":
        from liveworld.bench.serve import bench_serve

        bench_serve(args.checkpoint, clients=args.clients, seconds=args.seconds, fps=args.fps, threads=args.threads,
                    fuzz=args.fuzz, churn=args.churn, steps=args.steps_engine)
        return
    if args.what == "train":
        from liveworld.bench.train import bench_train

        bench_train(args.preset, args.checkpoint, steps=args.train_steps, threads=args.threads)
        return
    if args.what == "record":
        from liveworld.bench.record import bench_record

        bench_record(steps=args.steps, as_json=args.json)
    else:
        from liveworld.bench.tokenizers import bench_tokenizers

        bench_tokenizers(checkpoint=args.checkpoint, data=args.data, frames=args.frames or 512)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liveworld", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: min(cores, 2); play and the engine bench: 1, the fastest at batch 1)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("record", help="record episodes of a world")
    r.add_argument("--world", required=True, help="doom:<scenario>[/<map>], atari:<Game>, babyai:<Env>, minigrid:<Env>")
    r.add_argument("--episodes", type=int, required=True)
    r.add_argument("--steps", type=int, required=True, help="frames per episode at most")
    r.add_argument("--out", required=True, help="dataset directory (resumed if it exists)")
    r.add_argument("--policy", default="explore", choices=["explore", "random", "revisit"])
    r.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    r.add_argument("--val-every", type=int, default=10, help="every Nth episode goes to the validation split")
    r.add_argument("--repair", action="store_true", help="decompress and check every shard first, re-recording any that is corrupt "
                   "(without it, missing and truncated shards are re-recorded)")
    r.set_defaults(fn=_record)

    g = sub.add_parser("ingest", help="turn video files into a dataset")
    g.add_argument("files", nargs="+", help="mp4/mkv/webm files")
    g.add_argument("--out", required=True)
    g.add_argument("--sidecar", nargs="*", default=None,
                   help="JSONL files of per-frame actions/captions, one per video (default: VIDEO.jsonl if it exists)")
    g.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: the video's)")
    g.add_argument("--max-side", type=int, default=None, help="downscale so the longer side is at most this")
    g.set_defaults(fn=_ingest)

    d = sub.add_parser("data", help="inspect a dataset")
    dsub = d.add_subparsers(dest="data_command", required=True)
    di = dsub.add_parser("info", help="episodes, frames, modalities, sizes, audio rate, duration, bytes")
    di.add_argument("dir")
    di.add_argument("--json", action="store_true")
    di.set_defaults(fn=_data_info)

    t = sub.add_parser("train-tokenizer", help="train the video autoencoder or the audio codec")
    t.add_argument("--modality", required=True, choices=["video", "audio", "text"])
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--preset", default="default", help="tokenizer config preset (default | tiny)")
    t.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    t.add_argument("--steps", type=int, default=None, help="stop after this many optimiser steps")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last checkpoint")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", default=None, help="start from this tokenizer checkpoint's weights and config (e.g. the bundled world's tokenizers/video)")
    t.set_defaults(fn=_train_tokenizer)

    tr = sub.add_parser("train", help="train the world model; extra --model.X / --train.X override the preset")
    tr.add_argument("--preset", default="cpu", help="tiny (tests) | cpu (the bundled world) | gpu (>= 100M parameters, bf16)")
    tr.add_argument("--data", default=None)
    tr.add_argument("--out", default=None, help="run directory: checkpoint/, cache/, tb/")
    tr.add_argument("--tokenizers", default=None, help="directory with video/ audio/ text/ (default: the bundled world's)")
    tr.add_argument("--resume", action="store_true", help="continue OUT after a kill")
    tr.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    tr.add_argument("--init", default=None, help="start from this world's weights and model config (e.g. the bundled world): "
                    "a model over several worlds keeps what it knew of its own world")
    tr.set_defaults(fn=_train)

    ds = sub.add_parser("distill", help="a trained world -> one that takes guidance as input and trained on its own rollouts")
    ds.add_argument("run", nargs="?", default=None, help="the teacher: a run directory")
    ds.add_argument("--out", default=None, help="the new run directory")
    ds.add_argument("--data", default=None, help="dataset (default: the one the teacher trained on)")
    ds.add_argument("--minutes", type=float, default=30.0, help="training time budget")
    ds.add_argument("--resume", action="store_true", help="continue OUT after a kill")
    ds.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    ds.set_defaults(fn=_distill)

    pl = sub.add_parser("play", help="play the world in the browser (or --headless to a video file)")
    pl.add_argument("--checkpoint", default=None, help="run or world directory (default: the bundled world)")
    pl.add_argument("--steps", type=int, default=None, help="flow steps per frame (default: the world's own)")
    pl.add_argument("--solver", default="euler", choices=["euler", "heun"])
    pl.add_argument("--guidance", type=float, default=1.0, help="guidance scale w on text and action (one pass a step)")
    pl.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback needs a token on every connection")
    pl.add_argument("--token", default=None, help="the token a non-loopback server asks for (default: a new one, printed in the URL)")
    pl.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                    help="another page allowed to open sessions, like http://host:8080 (repeatable)")
    pl.add_argument("--api-docs", action="store_true", help="serve /docs and /openapi.json")
    pl.add_argument("--max-players", type=int, default=4, help="sessions served at once")
    pl.add_argument("--idle-timeout", type=float, default=120.0, help="seconds without input before a player's slot is freed")
    pl.add_argument("--port", type=int, default=8000)
    pl.add_argument("--fps", type=float, default=None, help="frame clock (default: the world's frame rate)")
    pl.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    pl.add_argument("--headless", action="store_true", help="write --frames frames to --out instead of serving")
    pl.add_argument("--frames", type=int, default=300)
    pl.add_argument("--actions", default="random", help="random, or a file with one action per line")
    pl.add_argument("--out", default="out.mp4")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--world", default=None, help="one world of a checkpoint of several (default: the page offers every one)")
    pl.add_argument("--prompt", default=None, help="start from this text alone: the first frame is made from it, with no "
                    "context (the page's players, or the --headless stream; the page's 'start from text' box does it later)")
    pl.set_defaults(fn=_play)

    ex = sub.add_parser("export", help="a run -> a small self-contained world directory (fp16 weights + tokenizers)")
    ex.add_argument("run", nargs="?", default=None)
    ex.add_argument("--out", required=True)
    ex.add_argument("--tokenizers", default=None, help="export only this tokenizers directory (video/ audio/ text/)")
    ex.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    ex.add_argument("--steps", type=int, default=None, help="the flow steps play, eval and bench use by default for this world")
    ex.set_defaults(fn=_export)

    ev = sub.add_parser("eval", help="evaluate a world model on held-out episodes")
    ev.add_argument("--checkpoint", default=None, help="run or checkpoint directory (default: the bundled world)")
    ev.add_argument("--data", default=None, help="dataset (default: fresh episodes with unseen seeds); for a checkpoint of "
                    "several worlds DIR1,DIR2,..., each used for the world it records")
    ev.add_argument("--steps", type=int, default=None, help="sampling steps per frame (default: the world's own, as play uses)")
    ev.add_argument("--positions", "--frames", dest="positions", type=int, default=512,
                    help="teacher-forced positions, one step ahead from real history")
    ev.add_argument("--starts", type=int, default=64, help="rollout starts (32 frames each, recorded actions)")
    ev.add_argument("--streams", type=int, default=16, help="long streams of random keys (0: none)")
    ev.add_argument("--stream-frames", "--stability-frames", dest="stream_frames", type=int, default=1000,
                    help="frames of each stream")
    ev.add_argument("--episodes", type=int, default=12, help="fresh episodes to record when no --data is given")
    ev.add_argument("--split", default="val", choices=["val", "all"],
                    help="with --data: its validation episodes, or all of them (a dataset recorded apart from training)")
    ev.add_argument("--solver", default="euler", choices=["euler", "heun"])
    ev.add_argument("--guidance", type=float, default=1.0, help="guidance scale w (an input of a distilled model: one pass a step)")
    ev.add_argument("--seed", type=int, default=0, help="positions, starts, noise and the streams' keys")
    ev.add_argument("--revisit", default=None, help="revisit routes: a dataset recorded with --policy revisit")
    ev.add_argument("--revisit-episodes", type=int, default=0, help="fresh revisit routes to record (Doom worlds; 0: no revisit figures)")
    ev.add_argument("--report", default=None, help="write an HTML report to this directory (one world)")
    ev.add_argument("--world", default=None, help="one world of a checkpoint of several (default: every world, "
                    "figures per world under 'worlds' in the JSON)")
    ev.add_argument("--json", action="store_true", help="print one JSON line of every figure last")
    ev.set_defaults(fn=_eval)

    b = sub.add_parser("bench", help="benchmarks: a table, then one JSON line")
    b.add_argument("what", choices=["record", "tokenizers", "engine", "serve", "train"])
    b.add_argument("--checkpoint", default=None, help="tokenizers: a tokenizers directory; engine: a world (default: bundled)")
    b.add_argument("--data", default=None, help="dataset (default: a fresh validation episode)")
    b.add_argument("--steps", type=int, default=600, help="record: steps per world")
    b.add_argument("--frames", type=int, default=None, help="tokenizers: frames to evaluate (512); engine: frames to stream (300)")
    b.add_argument("--sampling-steps", dest="steps_engine", type=int, default=None, help="engine: flow steps per frame (default: the world's own)")
    b.add_argument("--guidance", type=float, default=1.0, help="engine: guidance scale w (an input: one pass a step)")
    b.add_argument("--memory-units", type=int, default=0, help="engine: time per frame against memory size (0, 64, N units), dense against sparse")
    b.add_argument("--top-k", type=int, default=16, help="engine --memory-units: units a frame reads when sparse")
    b.add_argument("--stream", action="store_true", help="engine --memory-units N: one long stream (--frames) whose bank fills as frames leave the window")
    b.add_argument("--clients", type=int, default=4, help="serve: players at once (after a single-player phase)")
    b.add_argument("--seconds", type=float, default=20.0, help="serve: length of each phase")
    b.add_argument("--fps", type=float, default=None, help="serve: the server's frame clock (default: the world's)")
    b.add_argument("--fuzz", type=int, default=0, help="serve: malformed messages sent beside the players")
    b.add_argument("--churn", type=int, default=0, help="serve: connections opened and dropped beside the players")
    b.add_argument("--preset", default=None, help="train: a model/training preset (default: the checkpoint's run, the bundled world's)")
    b.add_argument("--train-steps", type=int, default=10, help="train: timed optimiser steps (after 3 warm-up steps)")
    b.add_argument("--json", action="store_true", help="(the JSON line is always printed last)")
    b.set_defaults(fn=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("train", "distill"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    setup_cpu_threads(args.threads)
    try:
        args.fn(args)
    except LiveworldError as e:
        print(f"liveworld: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liveworld: interrupted; finished work is saved, repeat the command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
