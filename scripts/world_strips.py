"""Frames a checkpoint of several worlds makes, for looking at: per world one row started from
real opening frames and one from the world's prompt alone, frames 1 / 10 / 30 / 100 (random
keys), each world at its own shape, scaled to one height. Writes a PNG.

    python scripts/world_strips.py RUN OUT.png [--frames 1,10,30,100]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from liveworld.engine.runner import WorldEngine
from liveworld.serve.play import random_actions
from liveworld.world import world_names


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--frames", default="1,10,30,100")
    p.add_argument("--height", type=int, default=96)
    args = p.parse_args()
    torch.set_num_threads(1)
    keep = [int(f) for f in args.frames.split(",")]
    first = WorldEngine.load(args.run, device="cpu", threads=1)
    rows = []
    for w in world_names(first.meta):
        eng = WorldEngine.for_world(first.model, first.meta, w, first.device)
        acts = random_actions(eng, max(keep), seed=0)
        for prompt in (None, eng.description):
            s = eng.new_session(seed=0, prompt=prompt)
            shots = {}
            for i, a in enumerate(acts, 1):
                frame, _ = eng.step(s, a)
                if i in keep:
                    shots[i] = frame
            h, wd = shots[keep[0]].shape[:2]
            scale = args.height / h
            tiles = [np.asarray(Image.fromarray(shots[i]).resize((round(wd * scale), args.height), Image.NEAREST)) for i in keep]
            rows.append(np.concatenate([np.concatenate([t, np.zeros((args.height, 4, 3), np.uint8)], 1) for t in tiles], 1))
        print(w, "done")
    width = max(r.shape[1] for r in rows)
    img = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows], 0)
    Image.fromarray(img).save(args.out)
    print(args.out, img.shape)


if __name__ == "__main__":
    main()
