"""`liveworld eval --report DIR`: an HTML page with PSNR against horizon, the stability trace and
side-by-side strips of real and generated frames. Knows matplotlib and HTML, not models."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _strip(eps, starts, frames: torch.Tensor, horizons=(1, 2, 4, 8, 16, 32, 64, 128), rows: int = 3) -> np.ndarray:
    """Per start: a row of real frames above a row of generated ones, at the given horizons."""
    blocks = []
    for b, (e, t) in enumerate(starts[:rows]):
        hs = [h for h in horizons if h <= frames.shape[1]]
        real = [eps[e].frames[t + h - 1] for h in hs]
        gen = [frames[b, h - 1] for h in hs]
        row = torch.cat([torch.cat(real, 2), torch.cat(gen, 2)], 1)  # [3, 2H, W * len]
        blocks.append(row)
    img = torch.cat(blocks, 1).clamp(0, 1).permute(1, 2, 0).numpy()
    return (img * 255).round().astype(np.uint8)


def write_report(out: str, res: dict, roll: list[float], hold: list[float], strip_frames, starts, eps, gen_stats, lo, hi,
                 snapshots: dict | None = None, revisit_strip: dict | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(roll) + 1), roll, label="rollout (recorded actions)")
    ax.plot(range(1, len(hold) + 1), hold, color="grey", lw=0.8, label="hold the last real frame")
    ax.axhline(res["copy_last_psnr_db"], color="grey", ls="--", label="copy-last-frame, 1 step")
    ax.axhline(res["autoencoder_psnr_db"], color="green", ls=":", label="autoencoder ceiling")
    ax.set_xscale("log")
    ax.set_xlabel("horizon (frames)")
    ax.set_ylabel("PSNR (dB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(d / "psnr_horizon.png", dpi=110)
    plt.close(fig)
    parts = [f"<h1>liveworld eval: {html.escape(res['world'])}</h1>",
             f"<p>{html.escape(res['checkpoint'])}, {res['steps']} step(s), {html.escape(res['source'])}, {res['date']}</p>",
             "<h2>PSNR against horizon</h2><img src='psnr_horizon.png'>"]
    if gen_stats is not None:
        fig, axs = plt.subplots(1, 3, figsize=(11, 3))
        for i, name in enumerate(("mean", "std", "edges")):
            axs[i].plot(gen_stats[:, i].numpy(), lw=0.8, label="generated")
            axs[i].axhspan(float(lo[i]), float(hi[i]), color="orange", alpha=0.2, label="real 1-99%")
            axs[i].set_title(f"pixel {name}")
            axs[i].set_xlabel("frame")
        axs[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(d / "stability.png", dpi=100)
        plt.close(fig)
        parts.append("<h2>Stability of a long stream (random keys, stream 0)</h2><img src='stability.png'>")
    if snapshots:
        frames = torch.cat([snapshots[k] for k in sorted(snapshots)], 2).clamp(0, 1)
        img = (frames.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(d / "free_rollout.png")
        parts.append(f"<h2>The stream at frames {', '.join(str(k) for k in sorted(snapshots))}</h2><img src='free_rollout.png'>")
    if strip_frames is not None:
        img = _strip(eps, starts, strip_frames)
        Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(d / "strips.png")
        parts.append("<h2>Real (top) and generated (bottom) at horizons 1, 2, 4, ...</h2><img src='strips.png'>")
    if revisit_strip:
        names = [n for n in ("real_before", "real_return", "memory", "no_memory") if n in revisit_strip]
        rows = torch.cat([torch.cat(list(revisit_strip[n].clamp(0, 1)), 2) for n in names], 1)
        img = (rows.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(d / "revisits.png")
        titles = {"real_before": "the view before leaving", "real_return": "the real return",
                  "memory": "generated, with memory", "no_memory": "generated, window only"}
        parts.append(f"<h2>Revisits, rows top to bottom: {', '.join(titles[n] for n in names)}</h2><img src='revisits.png'>")
    parts.append(f"<h2>Figures</h2><pre>{html.escape(json.dumps(res, indent=2))}</pre>")
    page = d / "index.html"
    page.write_text("<!doctype html><meta charset='utf-8'><title>liveworld eval</title>"
                    "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{image-rendering:pixelated;max-width:100%}</style>"
                    + "\n".join(parts))
    return str(page)
