"""Probes of a world model's weights on held-out episodes: what figures alone do not show.

    python scripts/probe_world.py step-sizes CKPT [--data D]
        clean estimate x̂_0 at t = 1 (pure noise) for each step size d the model was trained
        with: pixel PSNR against the real next frame, beside copy-last. A shortcut model at
        d = d_min is a regression to the conditional mean; at d = 1 it aims for a sample.
    python scripts/probe_world.py diversity CKPT [--data D]
        two samples from different noise at 1 / 2 / 4 / 8 steps: their distance to the real
        frame and to each other (0: the sampler ignores its noise).
    python scripts/probe_world.py drift CKPT [--frames 400] [--mode sample|mean] [--ctx-noise TAU] [--out strip.png]
        a free rollout from the first episode's opening with its recorded actions: latent and
        pixel statistics at frames 1, 10, 30, 100, 200, 400, 1000 and a strip of those frames
        above the real ones. --mode mean feeds d = d_min at every step (the regression
        estimate); --ctx-noise puts the context at flow time TAU with fresh noise each frame,
        the augmentation training used (an inference-time probe: the engine does not do it).

    python scripts/probe_world.py look CKPT [--out frames.png]
        one-step frames made from real context (the first held-out episode at frames 6, 7, 30,
        100, 200) below the real frames, with their PSNR and copy-last's: what a frame looks
        like before any drift.

The probes use the reference sampler of liveworld/model/sampling.py. Numbers go to
docs/RESULTS.md with the command that made them.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

import liveworld.flow.solvers as solvers
import liveworld.model.sampling as sampling
from liveworld.data.shards import Dataset
from liveworld.eval.evaluate import encode_episode, history_at
from liveworld.eval.metrics import pixel_stats, psnr_db
from liveworld.model.omni import FrameInputs
from liveworld.world import load_world_model, load_world_tokenizers

SNAPSHOTS = (1, 10, 30, 100, 200, 400, 1000)


def load(ckpt: str, data: str, episodes: int):
    model, meta = load_world_model(ckpt)
    tok = load_world_tokenizers(meta)
    ds = Dataset.open(data)
    eps = [encode_episode(ds.load(i), tok, model.cfg.text_len) for i in ds.ids()[:episodes]]
    return model, tok, eps


def batch_at(ep, positions: list[int], W: int):
    hist = history_at([ep] * len(positions), [(0, s) for s in positions], W)
    pick = lambda xs: torch.stack([xs[s] for s in positions])  # noqa: E731
    return hist, pick(ep.video), pick(ep.action), pick(ep.frames), torch.stack([ep.text[s - 1] for s in positions]), \
        torch.stack([ep.text_valid[s - 1] for s in positions])


def step_sizes(args) -> None:
    model, tok, eps = load(args.checkpoint, args.data, 2)
    W, ep = model.cfg.frames - 1, eps[1]
    pos = list(range(W + 5, min(len(ep.video), W + 95), 3))
    hist, x, act, real, text, tv = batch_at(ep, pos, W)
    B, g = len(pos), torch.Generator().manual_seed(0)
    clean = sampling.context_segment(hist)
    prev_f = torch.stack([ep.frames[s - 1] for s in pos])
    print(f"{B} frames of episode 1; copy-last {psnr_db(prev_f, real).mean():.2f} dB, "
          f"autoencoder {psnr_db(tok.video.decode(x).clamp(0, 1), real).mean():.2f} dB")
    K = model.cfg.shortcut_steps or 1
    for d in [2 ** -k for k in range(int(np.log2(K)), -1, -1)] if model.cfg.shortcut_steps else [0.0]:
        n = FrameInputs(video=torch.randn(x[:, None].shape, generator=g), video_prev=hist.video[:, -1:], action=act[:, None],
                        t=torch.ones(B, 1), d=torch.full((B, 1), d))
        if hist.audio is not None:
            n.audio, n.audio_prev = torch.randn(hist.audio[:, -1:].shape, generator=g), hist.audio[:, -1:]
        v, _ = model(text, clean, n, text_valid=tv, noisy_offset=W)
        print(f"  t = 1, d = {d:.3f}: {psnr_db(tok.video.decode(v[:, 0]).clamp(0, 1), real).mean():.2f} dB, "
              f"latent MSE {((v[:, 0] - x) ** 2).mean():.4f} (copy-last {((hist.video[:, -1] - x) ** 2).mean():.4f})")


def diversity(args) -> None:
    model, tok, eps = load(args.checkpoint, args.data, 2)
    W, ep = model.cfg.frames - 1, eps[1]
    pos = list(range(W + 5, min(len(ep.video), W + 95), 6))
    hist, x, act, real, text, tv = batch_at(ep, pos, W)
    for steps in (1, 2, 4, 8):
        a, b = (sampling.predict_next(model, hist, act, text, tv, steps, generator=torch.Generator().manual_seed(k))[0]
                for k in (0, 1))
        print(f"  {steps} steps: latent MSE to real {((a - x) ** 2).mean():.4f}, between two samples "
              f"{((a - b) ** 2).mean():.4f}, sample std {a.std():.3f} (real {x.std():.3f})")


def drift(args) -> None:
    if args.mode == "mean":  # every step fed the smallest trained d: the flow-matching regression
        solvers.step_size_input = lambda t, t_next, min_step: min_step
    if args.ctx_noise > 0:
        tau, g = args.ctx_noise, torch.Generator().manual_seed(123)
        plain_ctx, plain_next = sampling.context_segment, sampling.predict_next

        def noisy_context(hist, action_drop=None):
            seg = plain_ctx(hist, action_drop)
            seg.t = torch.full_like(seg.t, tau)
            return seg

        def predict_noisy(model, hist, *a, **k):  # the previous frame is noised too, as in training
            v = (1 - tau) * hist.video + tau * torch.randn(hist.video.shape, generator=g)
            return plain_next(model, sampling.History(v, hist.action, hist.audio), *a, **k)

        sampling.context_segment = noisy_context
        predict = predict_noisy
    else:
        predict = sampling.predict_next
    model, tok, eps = load(args.checkpoint, args.data, 3)
    W, ep = model.cfg.frames - 1, eps[0]
    hist = history_at([ep], [(0, W + 1)], W)
    # the episode's own actions from the first generated frame on (then the other episodes')
    acts = torch.cat([ep.action[W + 1:]] + [e.action[1:] for e in eps[1:]])
    acts = acts.repeat(args.frames // len(acts) + 1, 1)
    gen, shots, real_shots = torch.Generator().manual_seed(0), [], []
    real = torch.cat([e.video for e in eps])
    rs = pixel_stats(torch.cat([e.frames for e in eps]))
    print(f"real: latent std {real.std():.3f} mean {real.mean():.3f} | pixels mean {rs['mean'].mean():.3f} "
          f"std {rs['std'].mean():.3f} edges {rs['edges'].mean():.3f}")
    for h in range(args.frames):
        v, a = predict(model, hist, acts[h][None], ep.text[W][None], ep.text_valid[W][None], 1, generator=gen)
        hist = hist.push(v, acts[h][None], a, W)
        if h + 1 in SNAPSHOTS:
            img = tok.video.decode(v).clamp(0, 1)
            s = pixel_stats(img)
            print(f"frame {h + 1:>4}: latent std {v.std():.3f} mean {v.mean():.3f} | pixels mean {s['mean'].item():.3f} "
                  f"std {s['std'].item():.3f} edges {s['edges'].item():.3f}", flush=True)
            shots.append(img[0])
            if W + h + 1 < len(ep.frames):
                real_shots.append(ep.frames[W + h + 1])
    if args.out:
        row = lambda xs: torch.cat(xs, 2)  # noqa: E731
        real_row = row(real_shots + [torch.zeros_like(shots[0])] * (len(shots) - len(real_shots)))
        im = torch.cat([real_row, row(shots)], 1).permute(1, 2, 0).numpy()
        Image.fromarray((im * 255).astype(np.uint8)).resize((im.shape[1] * 2, im.shape[0] * 2), Image.NEAREST).save(args.out)
        print(f"strip (real above, generated below): {args.out}")


def look(args) -> None:
    model, tok, eps = load(args.checkpoint, args.data, 1)
    W, ep = model.cfg.frames - 1, eps[0]
    pos = [p for p in (6, 7, 30, 100, 200) if p < len(ep.video)]
    hist, _, act, real, text, tv = batch_at(ep, pos, W)
    v, _ = sampling.predict_next(model, hist, act, text, tv, 1, generator=torch.Generator().manual_seed(0))
    img = tok.video.decode(v)
    copy = torch.stack([ep.frames[p - 1] for p in pos])
    for p, a, b in zip(pos, psnr_db(img, real).tolist(), psnr_db(copy, real).tolist()):
        print(f"frame {p:>4}: one step {a:.2f} dB, copy-last {b:.2f} dB")
    if args.out:
        grid = torch.cat([torch.cat(list(real), 2), torch.cat(list(img), 2)], 1).permute(1, 2, 0).numpy()
        Image.fromarray((grid * 255).astype(np.uint8)).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(args.out)
        print(f"real above, one-step frames below: {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe", choices=["step-sizes", "diversity", "drift", "look"])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default="datasets/doom-heldout")
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--mode", choices=["sample", "mean"], default="sample")
    ap.add_argument("--ctx-noise", type=float, default=0.0)
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    {"step-sizes": step_sizes, "diversity": diversity, "drift": drift, "look": look}[args.probe](args)


if __name__ == "__main__":
    main()
