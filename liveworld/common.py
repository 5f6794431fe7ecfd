"""Things every stage shares: the user-facing error, atomic file writes, and the one place where
device, dtype and CPU threads are decided.

It knows nothing about worlds, models or datasets.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # torch loads where it is used, so `liveworld --help` stays instant
    import torch


class LiveworldError(Exception):
    """An error caused by the user's input: the message names the problem and what to do.

    The CLI prints it without a traceback and exits with status 2.
    """


# ---------------------------------------------------------------------------------------------
# Atomic writes: a reader sees either the old file or the complete new one, never a torn file,
# because os.replace is atomic on POSIX within one file system.


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to `path`; on success it is renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # the data must be on disk before the rename
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    path = Path(path)
    if not path.exists():
        raise LiveworldError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LiveworldError(f"{what} {path} is not valid JSON ({e}); restore or delete it") from e


# ---------------------------------------------------------------------------------------------
# Device, dtype and threads: decided here once; modules take them from their inputs.


def setup_cpu_threads(threads: int | None = None) -> int:
    """Sets torch's thread count and makes idle OpenMP threads sleep instead of spin.

    Spin-waiting OpenMP threads make small ops 2-10x slower on a 2-core machine where a
    simulator or server shares the second core. OMP_WAIT_POLICY only takes effect if set before
    the OpenMP runtime starts, so the CLI calls this first thing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    if threads is None:
        threads = int(os.environ.get("LIVEWORLD_THREADS", 0)) or min(os.cpu_count() or 1, 2)
    torch.set_num_threads(threads)
    return threads


def default_device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), in MiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def machine_description() -> str:
    """CPU model, core count and torch threads (GPU name when one is used), for benchmark records."""
    import torch
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name()}"
    return desc


def matmul_gflops(n: int = 1024, seconds: float = 0.5) -> float:
    """fp32 matrix-multiply throughput of this machine now, at torch's thread count: benchmark
    figures from different days (or a busy machine) compare only beside it."""
    import torch
    import time

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - t0) / 1e9
