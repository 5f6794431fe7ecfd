"""`liveworld ingest`: turn a user's video files (mp4, mkv, webm; with or without sound) into the
same dataset as `liveworld record`, one episode per file, decoded with PyAV.

Video: RGB uint8 at the native size, or downscaled so the longer side is at most `max_side`
(aspect ratio kept, even sizes). `timestamps` are the stream's pts in seconds from the first
frame. With `fps` the frames are resampled by timestamp: output frame k (at k / fps) is the source
frame on screen at that time (dropped or repeated, never blended).

Audio: the first audio stream, resampled to int16 at the stream's own rate, mono or stereo (more
channels are downmixed to stereo). It is cut by timestamp: frame t's audio is the sound from its
timestamp to the next frame's, i.e. what plays while frame t is shown; the last frame gets one
frame's worth. (A recorded world's frame t carries the sound of the step that led to it, one frame
earlier in game time; at playback both play while frame t is shown.) Where the audio track starts late or ends early, the gap is silence, so every
frame of an episode with sound has (about) 1 / fps seconds of it.

Sidecar (optional, JSONL, default VIDEO.jsonl next to VIDEO.mp4): one object per line,
    {"description": "a walk through a forest"}                    (only as a line of its own)
    {"frame": 12, "action": ["MOVE_FORWARD"], "caption": "a door opens"}
    {"time": 1.5, "action": []}                                   (seconds instead of a frame)
An explicit `sidecars` list has one entry per video ("" for none).
"frame" counts the source video's frames (before --fps resampling); "time" picks the frame on
screen at that second. "action" is a list of button names (a "buttons" space of every name in
the sidecar) or an integer (a "discrete" space); either is held from that frame until a later
line changes it. A line's action is what the player pressed while seeing that frame, so, as in
`liveworld record` and the schema (episode.py: actions[t] led from frame t-1 to frame t), the
action of sidecar frame f is stored in actions[f + 1], and actions[0] is "no action".

Resumable like `record`: the manifest header maps each ingested file (absolute path) to its
episode id, so a repeated command skips files already there; each shard is written atomically.
Any problem with one file (missing, not a video, no video stream, a bad sidecar line) is a
LiveworldError naming the file; the episodes ingested before it stay. Missing files and bad
sidecars are found before anything is decoded.

Truncated files: what a truncated file still decodes is kept, with a warning and
meta["truncated"] = True (a long recording cut short is still worth most of its frames). A file
that decodes no frame at all (e.g. an mp4 whose index, written last, was cut off) is an error.

The whole episode is held in memory before it is written (the schema stores whole arrays), so a
long high-resolution video needs --max-side / --fps or cutting first; this is checked up front.
Non-square pixels (anamorphic video) are not corrected. This module knows video containers and
the sidecar format; it knows nothing about worlds, policies or models.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace, Episode
from liveworld.data.shards import Dataset, split_for, writer_lock

SIDECAR_KEYS = ("frame", "time", "action", "caption")
# A decoded episode may use at most this share of the machine's memory: the frame list and the
# stacked array exist at the same time while the episode is built.
MEMORY_SHARE = 0.4


# ---------------------------------------------------------------------------------------------
# Sidecar


@dataclass
class SidecarEvent:
    line: int
    frame: int | None  # a source frame index, or
    time: float | None  # seconds from the first frame
    action: list[str] | int | None  # None: the held action does not change
    caption: str | None


@dataclass
class Sidecar:
    path: Path
    description: str = ""
    events: list[SidecarEvent] = field(default_factory=list)

    @property
    def action_space(self) -> ActionSpace:
        actions = [e.action for e in self.events if e.action is not None]
        if not actions:
            return ActionSpace("none", [])
        if isinstance(actions[0], int):
            return ActionSpace("discrete", [str(i) for i in range(max(actions) + 1)])
        names: dict[str, None] = {}  # first-seen order, deterministic
        for a in actions:
            names.update(dict.fromkeys(a))
        return ActionSpace("buttons", list(names))


def parse_sidecar(path: str | os.PathLike) -> Sidecar:
    """Reads and checks a sidecar JSONL file; raises LiveworldError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise LiveworldError(f"sidecar {path} does not exist; pass the right --sidecar file (one per video)")
    car = Sidecar(path)
    kind = None  # "buttons" or "discrete", fixed by the first action line
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as e:
        raise LiveworldError(f"sidecar {path} is not UTF-8 text ({e}); it must be JSONL, one object per line") from e
    seen_description = False
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue

        def bad(msg: str) -> LiveworldError:
            return LiveworldError(f"sidecar {path} line {n}: {msg}; fix or delete that line")

        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise bad(f"not valid JSON ({e.msg})") from e
        if not isinstance(obj, dict):
            raise bad(f"expected a JSON object like {{\"frame\": 12, \"action\": [\"JUMP\"]}}, got {raw.strip()[:40]!r}")
        if set(obj) == {"description"}:
            if seen_description or not isinstance(obj["description"], str):
                raise bad("give one description line, as a string: {\"description\": \"...\"}")
            car.description, seen_description = obj["description"], True
            continue
        unknown = sorted(set(obj) - set(SIDECAR_KEYS))
        if unknown:
            raise bad(f"unknown key(s) {unknown}; a line may have {', '.join(SIDECAR_KEYS)} (or only description)")
        if ("frame" in obj) == ("time" in obj):
            raise bad("give exactly one of \"frame\" (a source frame index) or \"time\" (seconds)")
        frame, time = obj.get("frame"), obj.get("time")
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
            raise bad(f"\"frame\" must be an integer >= 0, got {frame!r}")
        if "time" in obj and (isinstance(time, bool) or not isinstance(time, (int, float)) or not time >= 0):
            raise bad(f"\"time\" must be a number of seconds >= 0, got {time!r}")
        action = obj.get("action")
        if action is not None:
            if isinstance(action, list) and all(isinstance(a, str) for a in action):
                this = "buttons"
            elif isinstance(action, int) and not isinstance(action, bool) and action >= 0:
                this = "discrete"
            else:
                raise bad(f"\"action\" must be a list of button names ([\"MOVE_FORWARD\"], [] for none) "
                          f"or an integer >= 0, got {action!r}")
            if kind is not None and this != kind:
                raise bad(f"\"action\" is {this} here but {kind} on an earlier line; use one kind per sidecar")
            kind = this
        caption = obj.get("caption")
        if caption is not None and not isinstance(caption, str):
            raise bad(f"\"caption\" must be a string, got {caption!r}")
        car.events.append(SidecarEvent(n, frame, None if time is None else float(time), action, caption))
    return car


def default_sidecar(video: Path) -> Path | None:
    """VIDEO.jsonl (or VIDEO.mp4.jsonl) next to the video, if it exists."""
    for p in (video.with_suffix(".jsonl"), video.with_name(video.name + ".jsonl")):
        if p.is_file():
            return p
    return None


def apply_sidecar(car: Sidecar, timestamps: np.ndarray, source_times: np.ndarray, frame_s: float,
                  truncated: bool) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Sidecar events -> (actions int32 [T, A], text) on the episode's frames.

    timestamps: [T] of the episode's frames; source_times: [N] of every decoded source frame
    (the same unless resampled); frame_s: the last frame's duration.
    """
    T = len(timestamps)
    space = car.action_space
    placed = []
    for e in car.events:
        if e.frame is not None:
            if e.frame >= len(source_times):
                if truncated:  # the truncation warning already says frames are missing
                    continue
                raise LiveworldError(f"sidecar {car.path} line {e.line}: frame {e.frame} is past the video's "
                                     f"last frame {len(source_times) - 1}; fix the line or pass the right --sidecar")
            at = source_times[e.frame]
        else:
            if e.time > timestamps[-1] + frame_s + 1e-6:
                if truncated:
                    continue
                raise LiveworldError(f"sidecar {car.path} line {e.line}: time {e.time} s is past the video's end "
                                     f"({timestamps[-1] + frame_s:.3f} s); fix the line or pass the right --sidecar")
            at = e.time
        # The frame on screen at that moment (1 us of slack for float round trips).
        f = int(np.clip(np.searchsorted(timestamps, at + 1e-6, side="right") - 1, 0, T - 1))
        placed.append((f, e))
    placed.sort(key=lambda fe: fe[0])  # stable: on one frame, the later line wins
    held = np.zeros((T, space.width), np.int32)
    for f, e in placed:
        if e.action is None:
            continue
        row = np.zeros(space.width, np.int32)
        if space.kind == "buttons":
            row[[space.names.index(b) for b in e.action]] = 1
        else:
            row[0] = e.action
        held[f:] = row
    # held[f] is pressed while frame f is seen, so it leads to frame f + 1 (see the docstring).
    actions = np.zeros_like(held)
    actions[1:] = held[:-1]
    text = [(f, e.caption) for f, e in placed if e.caption]
    return actions, text


# ---------------------------------------------------------------------------------------------
# Decoding


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(W, H) after downscaling so the longer side is <= max_side; even sizes, aspect kept."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # Even (most encoders and 4:2:0 chroma need it), rounded down so never over max_side.
    return max(2, int(width * scale / 2) * 2), max(2, int(height * scale / 2) * 2)


@dataclass
class Decoded:
    frames: list[np.ndarray]  # uint8 [H, W, 3] each
    timestamps: np.ndarray  # float64 [T], seconds from the first frame
    source_times: np.ndarray  # float64 [N], every decoded source frame
    fps: float
    frame_s: float  # duration of the last frame
    audio: np.ndarray | None  # int16 [S, C], audio[0] at the first frame's time
    sample_rate_hz: int | None
    source_size: tuple[int, int]
    truncated: bool


class _FramePicker:
    """Keeps decoded frames (all of them, or the one on screen at each k / fps) as RGB arrays.

    Only kept frames are converted to RGB: the conversion, not the decoding, is the cost that
    --fps can save.
    """

    def __init__(self, max_side: int | None, fps: float | None):
        self.max_side, self.fps = max_side, fps
        self.source_size: tuple[int, int] | None = None
        self.size: tuple[int, int] | None = None
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []  # of kept frames, from the first frame
        self.source_times: list[float] = []
        self.t0: float | None = None
        self.prev: tuple[av.VideoFrame, float] | None = None
        self._cache: tuple[av.VideoFrame, np.ndarray] | None = None

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        # A repeated frame (upsampling). The cache holds the frame itself: an id() could be reused.
        if self._cache is not None and self._cache[0] is frame:
            return self._cache[1]
        w, h = self.size
        arr = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
        self._cache = (frame, arr)
        return arr

    def push(self, frame: av.VideoFrame, fallback_s: float) -> None:
        if self.size is None:
            # From the first frame, which the header can get wrong; a later change of resolution
            # mid-stream is scaled to it, so the episode's frames can be stacked.
            self.source_size = (frame.width, frame.height)
            self.size = output_size(frame.width, frame.height, self.max_side)
        if frame.time is not None:
            t = float(frame.time)
        elif self.source_times:  # no pts: assume a constant rate after the previous frame
            t = self.t0 + self.source_times[-1] + fallback_s
        else:
            t = 0.0
        if self.t0 is None:
            self.t0 = t
        t -= self.t0
        self.source_times.append(t)
        if self.fps is None:
            self.frames.append(self.rgb(frame))
            self.times.append(t)
            return
        if self.prev is not None:
            self._emit_until(t)
        self.prev = (frame, t)

    def _emit_until(self, t_end: float) -> None:
        """Keeps the previous frame for every output time before t_end."""
        frame, _ = self.prev
        while (k := len(self.frames)) / self.fps < t_end - 1e-9:
            self.frames.append(self.rgb(frame))
            self.times.append(k / self.fps)

    def finish(self, frame_s: float) -> None:
        if self.fps is not None and self.prev is not None:
            self._emit_until(self.prev[1] + frame_s)  # the last frame is on screen for frame_s
            if not self.frames:
                self.frames.append(self.rgb(self.prev[0]))
                self.times.append(0.0)
        self.prev = self._cache = None


class _AudioCollector:
    """Decoded audio frames -> one int16 [S, C] array at the first frame's rate and layout."""

    def __init__(self) -> None:
        self.resampler: av.AudioResampler | None = None
        self.rate = self.channels = 0
        self.t0: float | None = None  # seconds of the first sample (stream time)
        self.chunks: list[np.ndarray] = []

    def push(self, frame: av.AudioFrame) -> None:
        if self.resampler is None:
            self.rate = int(frame.sample_rate)
            self.channels = min(frame.layout.nb_channels, 2)
            layout = "stereo" if self.channels == 2 else "mono"
            # Packed s16: to_ndarray gives [1, samples * channels], interleaved.
            self.resampler = av.AudioResampler(format="s16", layout=layout, rate=self.rate)
            self.t0 = float(frame.time) if frame.time is not None else None
        self._add(self.resampler.resample(frame))

    def _add(self, frames: list[av.AudioFrame]) -> None:
        for f in frames:
            self.chunks.append(f.to_ndarray().reshape(-1, self.channels))

    def finish(self) -> np.ndarray | None:
        if self.resampler is None:
            return None
        self._add(self.resampler.resample(None))  # flush what the resampler buffers
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, self.channels), np.int16)


def _not_video(path: Path, e: Exception) -> LiveworldError:
    return LiveworldError(
        f"{path} is not a readable video ({type(e).__name__}: {getattr(e, 'strerror', None) or e}); check that it "
        f"plays (ffprobe {path}), re-export it or leave it out, and repeat the command: the files ingested "
        f"before it are kept and skipped"
    )


def _check_memory(path: Path, container: av.container.InputContainer, stream: av.video.VideoStream,
                  size: tuple[int, int], fps: float | None) -> None:
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    rate = fps or float(stream.average_rate or stream.guessed_rate or 30)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: skip the check
        return
    if seconds:
        need = seconds * rate * size[0] * size[1] * 3
        if need > MEMORY_SHARE * memory:
            raise LiveworldError(
                f"{path}: {seconds / 60:.0f} min at {size[0]}x{size[1]}, {rate:.0f} fps would need "
                f"{need / 2**30:.1f} GiB of memory as one episode (this machine has {memory / 2**30:.0f} GiB); "
                f"pass --max-side and/or --fps, or cut the video into parts first (ffmpeg -ss/-t)"
            )


def decode_video(path: str | os.PathLike, fps: float | None = None, max_side: int | None = None) -> Decoded:
    """Decodes one video file (and its first audio stream) in a single pass."""
    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise _not_video(path, e) from e
    with container:
        if not container.streams.video:
            raise LiveworldError(f"{path} has no video stream (only {', '.join(s.type for s in container.streams) or 'nothing'}); "
                                 f"ingest takes video files: leave it out and repeat the command")
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"  # frame threads: decoding is the bulk of the time
        astream = container.streams.audio[0] if container.streams.audio else None
        _check_memory(path, container, vstream, output_size(vstream.width, vstream.height, max_side), fps)
        rate_guess = float(vstream.average_rate or vstream.guessed_rate or 30)
        picker, sound = _FramePicker(max_side, fps), _AudioCollector()
        error: Exception | None = None
        try:
            # demux() ends with empty packets that flush the decoders.
            for packet in container.demux(*[s for s in (vstream, astream) if s is not None]):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        picker.push(frame, 1 / rate_guess)
                    else:
                        sound.push(frame)
        except (av.FFmpegError, OSError) as e:  # damaged mid-file
            error = e
        declared_s = container.duration / av.time_base if container.duration else None
        start_s = container.start_time / av.time_base if container.start_time is not None else None
    if not picker.source_times:
        if error is not None:
            raise _not_video(path, error) from error
        raise LiveworldError(f"{path}: its video stream decodes to no frames (truncated or damaged?); re-export "
                             f"it or leave it out, and repeat the command: the files ingested before it are kept")
    src = np.asarray(picker.source_times, np.float64)
    # The measured average rate; a single frame has only the stream's word for it.
    src_fps = (len(src) - 1) / src[-1] if len(src) > 1 and src[-1] > 0 else rate_guess
    frame_s = 1 / (fps or src_fps)
    picker.finish(1 / src_fps)
    audio = sound.finish()
    # A file cut short often decodes without any error (mkv, webm, fragmented mp4); what gives it
    # away is a header that promised more. Two frames of slack allow for rounding of the last one.
    decoded_end = picker.t0 + src[-1] + 1 / src_fps
    if audio is not None and sound.t0 is not None:
        decoded_end = max(decoded_end, sound.t0 + len(audio) / sound.rate)
    missing_s = declared_s - (decoded_end - (start_s or 0.0)) if declared_s else 0.0
    truncated = bool(error is not None or missing_s > 2 / src_fps + 0.05)
    if truncated:
        why = f"{type(error).__name__}: {getattr(error, 'strerror', None) or error}" if error is not None \
            else f"its header says {declared_s:.2f} s"
        warnings.warn(f"{path} is truncated or damaged after {len(src)} frames ({src[-1]:.2f} s; {why}); "
                      f"keeping the frames that decoded", stacklevel=2)
    if audio is not None and len(audio) and sound.t0 is not None and picker.t0 is not None:
        # Put audio[0] at the first frame's time: drop sound from before it, or pad silence.
        shift = round((sound.t0 - picker.t0) * sound.rate)
        audio = audio[-shift:] if shift < 0 else np.concatenate([np.zeros((shift, sound.channels), np.int16), audio])
    if audio is not None and not len(audio):
        audio = None  # an audio stream with nothing decodable: a silent video
    return Decoded(picker.frames, np.asarray(picker.times, np.float64), src, fps or src_fps, frame_s, audio,
                   sound.rate if audio is not None else None, picker.source_size, truncated)


def cut_audio(audio: np.ndarray, timestamps: np.ndarray, frame_s: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Audio aligned to frame 0 -> (audio [S, C], offsets [T + 1]) with frame t's audio from
    timestamps[t] to timestamps[t + 1], the last frame's frame_s long; silence fills a short track."""
    ends = np.append(timestamps, timestamps[-1] + frame_s)
    offsets = np.maximum.accumulate(np.round(ends * rate).astype(np.int64).clip(min=0))  # timestamps[0] = 0
    total = int(offsets[-1])
    if len(audio) < total:
        audio = np.concatenate([audio, np.zeros((total - len(audio), audio.shape[1]), np.int16)])
    return np.ascontiguousarray(audio[:total]), offsets


# ---------------------------------------------------------------------------------------------
# Ingest


def ingest(files: list[str], out: str | os.PathLike, sidecars: list[str] | None = None, fps: float | None = None,
           max_side: int | None = None, val_every: int = 10, progress: bool = True) -> int:
    """Ingests `files` into the dataset `out` (created or resumed); returns how many files were
    newly ingested (files already in the dataset are skipped)."""
    if not files:
        raise LiveworldError("give at least one video file to ingest")
    if fps is not None and not fps > 0:
        raise LiveworldError(f"--fps must be positive, got {fps}")
    if max_side is not None and max_side < 2:
        raise LiveworldError(f"--max-side must be at least 2, got {max_side}")
    if sidecars is not None and len(sidecars) != len(files):
        raise LiveworldError(f"--sidecar got {len(sidecars)} files for {len(files)} videos; give one per video, in "
                             f"the same order, or leave --sidecar out to use VIDEO.jsonl next to each video")
    # Everything cheap is checked before anything is decoded, so a typo does not cost an hour.
    paths = [Path(f).expanduser().resolve() for f in files]
    for p in paths:
        if not p.is_file():
            raise LiveworldError(f"video {p} does not exist (or is not a file); check the path")
    cars = [parse_sidecar(s) if s else None for s in sidecars] if sidecars is not None else \
        [parse_sidecar(s) if (s := default_sidecar(p)) else None for p in paths]

    header = {"world": "ingest", "source": "ingest", "fps": fps, "max_side": max_side, "val_every": val_every}
    with writer_lock(out):
        ds = Dataset.create_or_resume(out, header)
        damaged = ds.damaged()  # missing or truncated shards are ingested again, under their old ids
        files = ds.header.get("files", {})
        done: dict[str, int] = {k: v for k, v in files.items() if v in ds.entries and v not in damaged}
        redo: dict[str, int] = {k: v for k, v in files.items() if v in damaged}
        todo, queued = [], set()
        for p, car in zip(paths, cars):
            if str(p) not in done and p not in queued:  # a file given twice is ingested once
                todo.append((p, car))
                queued.add(p)
        next_id = max([*ds.entries, *files.values()], default=-1) + 1
        for p, car in tqdm(todo, desc="ingest", disable=not progress, unit="video"):
            ep = video_episode(p, car, fps, max_side)
            eid = redo.get(str(p), next_id)
            # The mapping goes into the same atomic manifest write as the episode's entry.
            ds.header["files"] = {**files, **done, str(p): eid}
            try:
                ds.add(eid, ep, split_for(eid, val_every), None)
            except BaseException:
                ds.header["files"] = {**files, **done}
                raise
            done[str(p)] = eid
            next_id = max(next_id, eid + 1)
    return len(todo)


def video_episode(path: Path, car: Sidecar | None, fps: float | None = None, max_side: int | None = None) -> Episode:
    """One video file (and its sidecar) -> one validated Episode."""
    dec = decode_video(path, fps, max_side)
    T = len(dec.frames)
    if car is not None:
        actions, text = apply_sidecar(car, dec.timestamps, dec.source_times, dec.frame_s, dec.truncated)
        space, description = car.action_space, car.description
    else:
        actions, text, space, description = np.zeros((T, 0), np.int32), [], ActionSpace("none", []), ""
    meta = {
        "world": f"video:{path.stem}",
        "source": "ingest",
        "fps": round(float(dec.fps), 6),
        "action_space": space.to_dict(),
        "description": description,
        "path": str(path),
        "sidecar": str(car.path) if car is not None else None,
        "source_size": list(dec.source_size),
        "source_frames": len(dec.source_times),
        "truncated": dec.truncated,
        "audio_channels": 1,
    }
    if dec.audio is not None:
        audio, offsets = cut_audio(dec.audio, dec.timestamps, dec.frame_s, dec.sample_rate_hz)
        meta.update(sample_rate_hz=dec.sample_rate_hz, audio_channels=int(audio.shape[1]))
    else:
        audio, offsets = np.zeros((0, 1), np.int16), np.zeros(T + 1, np.int64)
    frames = np.stack(dec.frames)
    dec.frames.clear()  # let the per-frame arrays go before the shard is compressed
    return Episode(frames, actions, dec.timestamps, audio, offsets, text, meta).validate(str(path))
