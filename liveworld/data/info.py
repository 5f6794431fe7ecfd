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


def repair_command(root: str | Path) -> str:
    """The command that repairs a data set's missing or corrupt episodes: the one that made it."""
    h = Dataset.open(root).header
    if h.get("source") == "ingest" or h.get("world") == "ingest":
        return "the same `liveworld ingest FILES --out DIR` command that made it (it re-ingests damaged episodes)"
    ids = Dataset.open(root).ids()
    n = max(ids) + 1 if ids else 1
    return (f"liveworld record --world {h['world']} --episodes {n} --steps {h['steps']} --out {root} "
            f"--policy {h['policy']} --seed {h['seed']} --val-every {h['val_every']} --repair")


def check_dataset(root: str | Path) -> Dataset:
    """Opens a data set (or each of DIR1,DIR2,...) and runs the quick shard check (sizes and zip
    directories), so a run fails in a second, naming the damage and the repair, not an hour
    into encoding."""
    if "," in str(root):
        return [check_dataset(r) for r in str(root).split(",")][0]
    ds = Dataset.open(root)
    if len(ds) == 0:
        raise LiveworldError(f"{root} holds no episodes; record some with `liveworld record --out {root}`")
    bad = ds.damaged()
    if bad:
        shown = "\n  ".join(list(bad.values())[:5]) + (f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise LiveworldError(f"{root}: {len(bad)} of {len(ds)} episodes are missing or corrupt:\n  {shown}\n"
                             f"repair them with:\n  {repair_command(root)}")
    return ds


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
