"""`liveworld <stage>`: one subcommand per stage of the data path.

    record           play a world with a policy and store episodes       (data/)
    ingest           turn video files into the same dataset                (data/)
    data info        what a dataset holds                                  (data/)
    train-tokenizer  train the video autoencoder or the audio codec       (tokenizers/)
    bench            record / tokenizers benchmarks                        (bench/)

Each subcommand imports its stage lazily so `liveworld --help` stays instant. A LiveworldError
is printed as one line without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from liveworld.common import LiveworldError, setup_cpu_threads


def _record(args: argparse.Namespace) -> None:
    from liveworld.data.record import record

    stats = record(args.world, args.episodes, args.steps, args.out, args.policy, args.seed, args.val_every)
    print(f"recorded {stats.episodes} episodes, {stats.frames:,} frames in {stats.seconds:.1f} s "
          f"({stats.fps:,.0f} frames/s); {stats.skipped} already there -> {args.out}")


def _ingest(args: argparse.Namespace) -> None:
    from liveworld.data.ingest import ingest

    n = ingest(args.files, args.out, sidecars=args.sidecar, fps=args.fps, max_side=args.max_side)
    print(f"ingested {n} files -> {args.out}")


def _data_info(args: argparse.Namespace) -> None:
    from liveworld.data.info import dataset_info, format_info

    info = dataset_info(args.dir)
    print(json.dumps(info) if args.json else format_info(info))


def _train_tokenizer(args: argparse.Namespace) -> None:
    from liveworld.tokenizers.train import train_tokenizer

    train_tokenizer(args.modality, args.data, args.out, minutes=args.minutes, steps=args.steps,
                    resume=args.resume, preset=args.preset, seed=args.seed)


def _bench(args: argparse.Namespace) -> None:
    if args.what == "record":
        from liveworld.bench.record import bench_record

        bench_record(steps=args.steps, as_json=args.json)
    else:
        from liveworld.bench.tokenizers import bench_tokenizers

        bench_tokenizers(checkpoint=args.checkpoint, data=args.data, frames=args.frames, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liveworld", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: min(cores, 2))")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("record", help="record episodes of a world")
    r.add_argument("--world", required=True, help="doom:<scenario>[/<map>], atari:<Game>, babyai:<Env>, minigrid:<Env>")
    r.add_argument("--episodes", type=int, required=True)
    r.add_argument("--steps", type=int, required=True, help="frames per episode at most")
    r.add_argument("--out", required=True, help="dataset directory (resumed if it exists)")
    r.add_argument("--policy", default="explore", choices=["explore", "random"])
    r.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    r.add_argument("--val-every", type=int, default=10, help="every Nth episode goes to the validation split")
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
    t.set_defaults(fn=_train_tokenizer)

    b = sub.add_parser("bench", help="benchmarks: a table, then one JSON line")
    b.add_argument("what", choices=["record", "tokenizers"])
    b.add_argument("--checkpoint", default=None, help="tokenizers directory (default: the bundled world's)")
    b.add_argument("--data", default=None, help="dataset (default: a fresh validation episode)")
    b.add_argument("--steps", type=int, default=600, help="record: steps per world")
    b.add_argument("--frames", type=int, default=512, help="tokenizers: frames to evaluate")
    b.add_argument("--json", action="store_true", help="(the JSON line is always printed last)")
    b.set_defaults(fn=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
