"""`liveworld data info`: what a dataset holds, read from its shards (not trusted from the manifest)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from liveworld.common import LiveworldError
from liveworld.data.shards import Dataset


def dataset_info(root: str | Path) -> dict:
    ds = Dataset.open(root)
    frames, seconds, nbytes = 0, 0.0, 0
    modalities: set[str] = set()
    sizes: Counter = Counter()
    rates: set[int] = set()
    worlds: set[str] = set()
    splits: Counter = Counter()
    corrupt: list[str] = []
    for i in ds.ids():
        entry = ds.entries[i]
        try:
            ep = ds.load(i)
        except LiveworldError as e:
            corrupt.append(str(e))
            continue
        frames += len(ep)
        seconds += len(ep) / float(ep.meta["fps"])
        nbytes += entry.bytes
        modalities.update(ep.modalities())
        sizes[f"{ep.frames.shape[2]}x{ep.frames.shape[1]}"] += len(ep)
        if ep.has_audio:
            rates.add(int(ep.meta["sample_rate_hz"]))
        worlds.add(ep.meta["world"])
        splits[entry.split] += 1
    order = ["video", "audio", "action", "text"]
    return {
        "path": str(ds.root),
        "episodes": len(ds) - len(corrupt),
        "frames": frames,
        "modalities": [m for m in order if m in modalities],
        "frame_sizes": dict(sizes),
        "audio_sample_rates_hz": sorted(rates),
        "duration_s": round(seconds, 2),
        "bytes": nbytes,
        "worlds": sorted(worlds),
        "splits": dict(splits),
        "corrupt": corrupt,
    }


def format_info(info: dict) -> str:
    rows = [
        ("path", info["path"]),
        ("worlds", ", ".join(info["worlds"])),
        ("episodes", f"{info['episodes']}  ({', '.join(f'{k} {v}' for k, v in sorted(info['splits'].items()))})"),
        ("frames", f"{info['frames']:,}"),
        ("modalities", ", ".join(info["modalities"])),
        ("frame sizes (WxH)", ", ".join(f"{k} ({v:,} frames)" for k, v in info["frame_sizes"].items())),
        ("audio rate", ", ".join(f"{r:,} Hz" for r in info["audio_sample_rates_hz"]) or "no audio"),
        ("duration", f"{info['duration_s'] / 60:.1f} min"),
        ("bytes", f"{info['bytes'] / 2**20:.1f} MiB"),
    ]
    lines = [f"{k:<18} {v}" for k, v in rows]
    for c in info["corrupt"]:
        lines.append(f"CORRUPT            {c}")
    return "\n".join(lines)
