"""Four sessions of the bundled world stepped in one batch against one at a time: the largest
difference between their frames (they must be the same) and the time of a round each way.

    .venv/bin/python scripts/batch_vs_single.py [--sessions 4] [--rounds 30] [--threads 1]
"""

import argparse
import time

import numpy as np

from liveworld.engine.runner import WorldEngine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    eng = WorldEngine.load(threads=args.threads)
    keys = [["MOVE_FORWARD"], ["TURN_LEFT"], [], ["ATTACK"], ["TURN_RIGHT"], ["MOVE_BACKWARD"]]
    acts = [keys[i % len(keys)] for i in range(args.sessions)]
    batched = [eng.new_session(seed=i) for i in range(args.sessions)]
    alone = [eng.new_session(seed=i) for i in range(args.sessions)]
    diff = 0.0
    for _ in range(12):  # past the first window: every cache full
        got = eng.step_batch(batched, acts)
        for i, s in enumerate(alone):
            frame = eng.step(s, acts[i])[0]
            diff = max(diff, float(np.abs(frame.astype(int) - got[i][0].astype(int)).max()))
            diff_latent = float((s.last_video - batched[i].last_video).abs().max())
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        eng.step_batch(batched, acts)
    tb = (time.perf_counter() - t0) / args.rounds
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        for i, s in enumerate(alone):
            eng.step(s, acts[i])
    ts = (time.perf_counter() - t0) / args.rounds
    print(f"{args.sessions} sessions, {args.threads} thread(s): largest pixel difference {diff:.0f}, latent {diff_latent:.1e}")
    print(f"a round batched {tb * 1000:.1f} ms, one at a time {ts * 1000:.1f} ms: {ts / tb:.2f}x")


if __name__ == "__main__":
    main()
