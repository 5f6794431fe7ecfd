"""`liveworld bench tokenizers`: reconstruction quality and speed of the video and audio
tokenizers on held-out data. Prints a table, then one JSON line last.

Quality is measured on validation episodes of `--data`, or (by default) on fresh episodes of the
bundled world recorded with seeds that no training episode used. Speed is batch-1 latency (the
real-time case), the median of repeated runs, with the FLOPs of the same call beside it.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from liveworld.bundled import bundled_tokenizers_dir, bundled_world, heldout_seed
from liveworld.common import LiveworldError, machine_description
from liveworld.data.arrays import resize_frames
from liveworld.data.episode import Episode
from liveworld.data.shards import Dataset
from liveworld.tokenizers import load_tokenizer
from liveworld.eval.metrics import psnr_db


def heldout_episodes(data: str | None, frames: int) -> tuple[list[Episode], str]:
    if data:
        ds = Dataset.open(data)
        ids = ds.ids("val") or ds.ids()
        eps, n = [], 0
        for i in ids:
            eps.append(ds.load(i))
            n += len(eps[-1])
            if n >= frames:
                break
        return eps, f"{data} ({'val split' if ds.ids('val') else 'all episodes'})"
    from liveworld.data.record import record_episode
    from liveworld.data.worlds import make_world

    world_info = bundled_world()
    world = make_world(world_info["world"])
    eps, n, k = [], 0, 0
    try:
        while n < frames:
            eps.append(record_episode(world, "explore", heldout_seed(world_info, k), min(frames - n, 500)))
            n, k = n + len(eps[-1]), k + 1
    finally:
        world.close()
    return eps, f"fresh {world_info['world']} episodes, held-out seeds {heldout_seed(world_info)}..{heldout_seed(world_info, k - 1)}"


def time_ms(fn, reps: int = 30) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def gflop(fn) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops() / 1e9


@torch.no_grad()
def bench_tokenizers(checkpoint: str | None = None, data: str | None = None, frames: int = 512) -> dict:
    tok_dir = Path(checkpoint) if checkpoint else bundled_tokenizers_dir()
    if not (tok_dir / "video").exists():
        raise LiveworldError(f"{tok_dir} has no video/ tokenizer; pass the directory that holds video/ and audio/")
    video = load_tokenizer(tok_dir / "video")
    eps, source = heldout_episodes(data, frames)
    size = video.cfg.frame_size
    x = torch.cat([resize_frames(ep.frames, size) for ep in eps])[:frames]
    psnrs = torch.cat([psnr_db(video.decode(video.encode(b.float() / 255)), b.float() / 255) for b in x.split(64)])
    x1 = x[:1].float() / 255
    z1 = video.encode(x1)
    res = {
        "bench": "tokenizers",
        "source": source,
        "frames": len(x),
        "frame_size": f"{size[0]}x{size[1]}",
        "latent_shape": list(z1.shape[1:]),
        "video_psnr_db": round(psnrs.mean().item(), 2),
        "video_psnr_p10_db": round(psnrs.quantile(0.1).item(), 2),
        "video_encode_ms": round(time_ms(lambda: video.encode(x1)), 2),
        "video_decode_ms": round(time_ms(lambda: video.decode(z1)), 2),
        "video_encode_gflop": round(gflop(lambda: video.encode(x1)), 3),
        "video_decode_gflop": round(gflop(lambda: video.decode(z1)), 3),
        "video_params_m": round(sum(p.numel() for p in video.parameters()) / 1e6, 3),
    }
    if (tok_dir / "audio").exists() and any(ep.has_audio for ep in eps):
        from liveworld.tokenizers.audio import audio_metrics, episode_windows

        audio = load_tokenizer(tok_dir / "audio")
        S = audio.cfg.samples_per_frame
        if audio.cfg.overlap_tokens:  # a lapped codec codes each frame's window, consecutive frames
            a = torch.cat([episode_windows(ep.audio, len(ep), audio.cfg) for ep in eps if ep.has_audio])[:frames]
            a = a.round().clamp(-32768, 32767).to(torch.int16)
        else:
            clips = [ep.frame_audio(t).T for ep in eps for t in range(len(ep)) if ep.audio_offsets[t + 1] - ep.audio_offsets[t] == S]
            a = torch.from_numpy(np.stack(clips[:frames]))  # [N, C, S] int16
        res.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in audio_metrics(audio, a).items()})
        a1 = a[:1].float() / 32768
        za = audio.encode(a1)
        res["audio_latent_shape"] = list(za.shape[1:])
        res["audio_encode_ms"] = round(time_ms(lambda: audio.encode(a1)), 2)
        res["audio_decode_ms"] = round(time_ms(lambda: audio.decode(za)), 2)
    res.update({"threads": torch.get_num_threads(), "date": date.today().isoformat(),
                "machine": machine_description()})
    rows = [(k, v) for k, v in res.items() if k not in ("bench",)]
    width = max(len(k) for k, _ in rows)
    print("tokenizers benchmark")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(json.dumps(res))
    return res
