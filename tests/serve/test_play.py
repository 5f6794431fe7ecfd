import json

import av
import pytest

from liveworld.bench.engine import bench_engine
from liveworld.common import LiveworldError
from liveworld.engine.runner import WorldEngine
from liveworld.serve.play import actions_from_file, headless


def test_headless_writes_video_with_sound(tiny_run, tmp_path):
    eng = WorldEngine.load(tiny_run, device="cpu", threads=1)
    res = headless(eng, 12, "random", str(tmp_path / "out.mp4"))
    assert res["audio"]
    with av.open(str(tmp_path / "out.mp4")) as c:
        kinds = sorted(s.type for s in c.streams)
        frames = sum(1 for _ in c.decode(video=0))
    assert kinds == ["audio", "video"] and frames == 12


def test_actions_file(tiny_run, tmp_path):
    f = tmp_path / "acts.txt"
    f.write_text('MOVE_FORWARD, TURN_LEFT\n\n["ATTACK"]\n')
    assert actions_from_file(str(f), 5) == [["MOVE_FORWARD", "TURN_LEFT"], [], ["ATTACK"], ["MOVE_FORWARD", "TURN_LEFT"], []]
    f.write_text('["JUMP"]\n')
    eng = WorldEngine.load(tiny_run, device="cpu", threads=1)
    with pytest.raises(LiveworldError, match="unknown action"):
        headless(eng, 3, str(f), str(tmp_path / "x.mp4"))
    assert not (tmp_path / "x.mp4").exists()
    f.write_text('["ATTACK"\n')
    with pytest.raises(LiveworldError, match=r"acts.txt:1"):
        actions_from_file(str(f), 3)
    with pytest.raises(LiveworldError, match="does not exist"):
        actions_from_file(str(tmp_path / "none.txt"), 3)


def test_engine_bench_json_last(tiny_run, capsys):
    bench_engine(str(tiny_run), frames=12, steps=1, threads=1, sweep=(1, 2), sweep_frames=4)
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in ("fps_p50", "ms_per_frame_p50", "ms_per_frame_p95", "first_frame_ms", "nfe_per_frame", "gflop_per_frame",
              "peak_rss_mb", "rss_mb_frame_100", "rss_mb_last"):
        assert k in res
    assert res["nfe_per_frame"] == 2.0 and [r["steps"] for r in res["fps_by_steps"]] == [1, 2]


def test_bad_utf8_from_a_client_is_one_log_line_not_a_traceback():
    import logging

    from liveworld.serve.play import _one_line_for_bad_utf8

    try:
        b"\xff".decode()
    except UnicodeDecodeError as e:
        err = e
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Invalid UTF-8", (), (type(err), err, None))
    assert _one_line_for_bad_utf8(record) and record.exc_info is None and "invalid UTF-8" in record.getMessage()
    try:  # the second bad frame: another error raised while handling the first
        try:
            b"\xff".decode()
        except UnicodeDecodeError:
            raise RuntimeError("InvalidState: connection is closing")
    except RuntimeError as e:
        chained = e
    record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Exception in callback", (), (type(chained), chained, None))
    assert _one_line_for_bad_utf8(record) and record.exc_info is None
    other = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "boom", (), (ValueError, ValueError("x"), None))
    assert _one_line_for_bad_utf8(other) and other.exc_info is not None  # real errors keep their traceback
