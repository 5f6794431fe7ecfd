import json
import os

import av
import numpy as np
import pytest

from liveworld.cli import main
from liveworld.common import LiveworldError
from liveworld.data.info import dataset_info
from liveworld.data.ingest import ingest, output_size
from liveworld.data.record import record
from liveworld.data.shards import Dataset

FPS, W, H, FRAMES = 10, 64, 48, 20
VCODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def make_video(path, frames=FRAMES, fps=FPS, vcodec=VCODEC, acodec="aac", rate=22050, channels=1, size=(W, H)):
    """Frame t is gray level 10 t (left half red); the sound is a 440 Hz sine for the whole video."""
    w, h = size
    with av.open(str(path), "w") as c:
        v = c.add_stream(vcodec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = None
        if acodec:
            a = c.add_stream(acodec, rate=rate)
            a.layout = "stereo" if channels == 2 else "mono"
        for t in range(frames):
            img = np.full((h, w, 3), (10 * t) % 256, np.uint8)
            img[:, : w // 2, 0] = 200
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            n = int(frames / fps * rate)
            x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
            fr = av.AudioFrame.from_ndarray(np.repeat(x[None], channels, 0), format="fltp", layout=a.layout.name)
            fr.sample_rate, fr.pts = rate, 0
            for p in [*a.encode(fr), *a.encode()]:
                c.mux(p)
    return path


def write_lines(path, objs):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def gray(ep):
    return ep.frames[:, 0, -1, 1].astype(int)  # the right half's green: 10 t


def test_output_size():
    assert output_size(64, 48, None) == (64, 48)
    assert output_size(64, 48, 100) == (64, 48)
    assert output_size(64, 48, 32) == (32, 24)
    assert output_size(1920, 1080, 255) == (254, 142)  # even, longer side <= max_side
    assert output_size(1080, 1920, 256) == (144, 256)


def test_ingest_with_and_without_audio(tmp_path):
    a = make_video(tmp_path / "walk.mp4")
    b = make_video(tmp_path / "quiet.mp4", acodec=None)
    assert ingest([str(a), str(b)], tmp_path / "ds", progress=False) == 2
    ds = Dataset.open(tmp_path / "ds")
    ep = ds.load(0)
    assert ep.frames.shape == (FRAMES, H, W, 3) and ep.frames.dtype == np.uint8
    assert np.abs(gray(ep) - 10 * np.arange(FRAMES)).max() <= 4  # right frames, in order (lossy codec)
    assert ep.frames[0, 0, 0, 0] > 150  # RGB, not BGR: the red half is red
    np.testing.assert_allclose(ep.timestamps, np.arange(FRAMES) / FPS)
    assert ep.meta["world"] == "video:walk" and ep.meta["source"] == "ingest" and ep.meta["fps"] == pytest.approx(FPS)
    assert ep.meta["path"] == str(a.resolve()) and ep.meta["action_space"] == {"kind": "none", "names": []}
    assert ep.meta["sample_rate_hz"] == 22050 and ep.meta["audio_channels"] == 1 and ep.audio.shape[1] == 1
    assert set(np.diff(ep.audio_offsets)) == {22050 // FPS}  # frame t: from its timestamp to the next
    assert len(ep.audio) == FRAMES * 22050 // FPS
    rms = [np.sqrt(np.mean(ep.frame_audio(t).astype(float) ** 2)) for t in range(FRAMES)]
    assert min(rms) > 5000  # the sine (amplitude 16384, rms 11585) in every frame
    assert ep.modalities() == ["video", "audio"]
    quiet = ds.load(1)
    assert len(quiet) == FRAMES and not quiet.has_audio and quiet.modalities() == ["video"]
    info = dataset_info(tmp_path / "ds")
    assert info["episodes"] == 2 and info["audio_sample_rates_hz"] == [22050] and info["duration_s"] == pytest.approx(4.0)


@pytest.mark.skipif(not {"libvpx", "libopus"} <= av.codecs_available, reason="no vp8/opus encoder")
def test_webm_stereo_and_mkv(tmp_path):
    webm = make_video(tmp_path / "clip.webm", vcodec="libvpx", acodec="libopus", rate=48000, channels=2)
    mkv = make_video(tmp_path / "clip2.mkv", acodec="flac", rate=16000)
    ingest([str(webm), str(mkv)], tmp_path / "ds", progress=False)
    ds = Dataset.open(tmp_path / "ds")
    ep = ds.load(0)
    assert ep.audio.shape == (FRAMES * 4800, 2) and set(np.diff(ep.audio_offsets)) == {4800}
    assert ep.meta["audio_channels"] == 2 and ep.meta["sample_rate_hz"] == 48000
    assert np.abs(gray(ep) - 10 * np.arange(FRAMES)).max() <= 6
    ep2 = ds.load(1)
    assert ep2.meta["sample_rate_hz"] == 16000 and len(ep2.audio) == FRAMES * 1600


def test_max_side_and_fps_resampling(tmp_path):
    a = make_video(tmp_path / "v.mp4")
    ingest([str(a)], tmp_path / "ds", fps=4, max_side=32, progress=False)
    ep = Dataset.open(tmp_path / "ds").load(0)
    assert ep.frames.shape == (8, 24, 32, 3)  # 2 s at 4 fps, 64x48 -> 32x24
    np.testing.assert_allclose(ep.timestamps, np.arange(8) / 4)
    # Output frame k is the source frame on screen at k / 4 s: source frames 0, 2, 5, 7, 10, ...
    expected = 10 * np.floor(np.arange(8) / 4 * FPS + 1e-9)
    assert np.abs(gray(ep) - expected).max() <= 4
    assert ep.meta["fps"] == 4 and ep.meta["source_size"] == [W, H]
    assert set(np.diff(ep.audio_offsets)) <= {5512, 5513} and len(ep.audio) == 2 * 22050


def test_sidecar_actions_and_captions(tmp_path):
    a = make_video(tmp_path / "game.mp4", acodec=None)
    write_lines(tmp_path / "game.jsonl", [  # found next to the video by default
        {"description": "a corridor with doors"},
        {"frame": 3, "action": ["MOVE_FORWARD"], "caption": "a door opens"},
        {"time": 1.0, "action": ["MOVE_FORWARD", "ATTACK"]},
        {"time": 0.55, "caption": "a shot"},  # the frame on screen at 0.55 s is frame 5
        "",
        {"frame": 15, "action": []},
    ])
    ingest([str(a)], tmp_path / "ds", progress=False)
    ep = Dataset.open(tmp_path / "ds").load(0)
    assert ep.meta["action_space"] == {"kind": "buttons", "names": ["MOVE_FORWARD", "ATTACK"]}
    assert ep.meta["description"] == "a corridor with doors"
    assert ep.text == [(3, "a door opens"), (5, "a shot")]
    # What is pressed while frame f is seen leads to frame f + 1: actions[f + 1] (as in record).
    expected = np.zeros((FRAMES, 2), np.int32)
    expected[4:11] = [1, 0]
    expected[11:16] = [1, 1]
    np.testing.assert_array_equal(ep.actions, expected)
    assert ep.modalities() == ["video", "action", "text"]


def test_discrete_sidecar_given_explicitly_with_fps(tmp_path):
    a = make_video(tmp_path / "v.mp4", acodec=None)
    car = write_lines(tmp_path / "actions.jsonl", [{"frame": 0, "action": 2}, {"frame": 9, "action": 1, "caption": "turn"}])
    ingest([str(a)], tmp_path / "ds", sidecars=[str(car)], fps=5, progress=False)
    ep = Dataset.open(tmp_path / "ds").load(0)
    assert ep.meta["action_space"] == {"kind": "discrete", "names": ["0", "1", "2"]}
    assert ep.actions.shape == (10, 1)
    # Source frame 9 (0.9 s) is on screen during output frame 4 (0.8 s).
    np.testing.assert_array_equal(ep.actions[:, 0], [0, 2, 2, 2, 2, 1, 1, 1, 1, 1])
    assert ep.text == [(4, "turn")] and ep.meta["sidecar"] == str(car)


def test_rerun_skips_ingested_files(tmp_path):
    a, b = make_video(tmp_path / "a.mp4", acodec=None), make_video(tmp_path / "b.mp4", acodec=None)
    assert ingest([str(a)], tmp_path / "ds", progress=False) == 1
    assert ingest([str(a), str(b), str(b)], tmp_path / "ds", progress=False) == 1
    assert ingest([str(b), str(a)], tmp_path / "ds", progress=False) == 0
    ds = Dataset.open(tmp_path / "ds")
    assert ds.ids() == [0, 1] and ds.header["files"] == {str(a.resolve()): 0, str(b.resolve()): 1}
    assert [ds.load(i).meta["world"] for i in ds.ids()] == ["video:a", "video:b"]
    with pytest.raises(LiveworldError, match="max_side=None, not 32"):  # other settings: another dataset
        ingest([str(a)], tmp_path / "ds", max_side=32, progress=False)


def test_corrupt_and_truncated_files_keep_earlier_episodes(tmp_path):
    good = make_video(tmp_path / "good.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(LiveworldError, match="junk.mp4 is not a readable video"):
        ingest([str(good), str(junk)], tmp_path / "ds", progress=False)
    # An mp4 writes its index last: cut short, nothing decodes.
    whole = make_video(tmp_path / "whole.mp4", frames=60).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LiveworldError, match="cut.mp4"):
        ingest([str(good), str(cut)], tmp_path / "ds", progress=False)
    ds = Dataset.open(tmp_path / "ds")
    assert ds.ids() == [0] and len(ds.load(0)) == FRAMES  # the finished episode survived both


def test_truncated_mkv_keeps_what_decodes(tmp_path):
    whole = make_video(tmp_path / "whole.mkv", frames=60).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match="cut.mkv is truncated"):
        ingest([str(cut)], tmp_path / "ds", progress=False)
    ep = Dataset.open(tmp_path / "ds").load(0)
    assert 10 < len(ep) < 60 and ep.meta["truncated"] is True
    assert len(ep.audio) == len(ep) * 22050 // FPS  # the sound is cut with the frames


@pytest.mark.parametrize("line, message", [
    ('{"frame": 3, "action": ["A"]', "line 2: not valid JSON"),
    ('[1, 2]', "line 2: expected a JSON object"),
    ('{"action": ["A"]}', "line 2: give exactly one of"),
    ('{"frame": 1, "time": 0.1}', "line 2: give exactly one of"),
    ('{"frame": -1}', "line 2: \"frame\" must be an integer"),
    ('{"frame": 1, "actions": ["A"]}', "line 2: unknown key"),
    ('{"frame": 1, "action": "JUMP"}', "line 2: \"action\" must be a list"),
    ('{"frame": 1, "action": 3}', "line 2: \"action\" is discrete here but buttons"),
    ('{"frame": 1, "caption": 5}', "line 2: \"caption\" must be a string"),
])
def test_bad_sidecar_line_names_file_and_line(tmp_path, line, message):
    a = make_video(tmp_path / "v.mp4", frames=2, acodec=None)
    (tmp_path / "v.jsonl").write_text('{"frame": 0, "action": ["A"]}\n' + line + "\n")
    with pytest.raises(LiveworldError, match=rf"v\.jsonl {message}"):
        ingest([str(a)], tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()  # sidecars are checked before anything is written


def test_sidecar_past_the_end(tmp_path):
    good, a = make_video(tmp_path / "good.mp4", acodec=None), make_video(tmp_path / "v.mp4", acodec=None)
    write_lines(tmp_path / "v.jsonl", [{"frame": 1, "action": ["A"]}, {"frame": 99, "action": []}])
    with pytest.raises(LiveworldError, match=r"v\.jsonl line 2: frame 99 is past the video's last frame 19"):
        ingest([str(good), str(a)], tmp_path / "ds", progress=False)
    assert Dataset.open(tmp_path / "ds").ids() == [0]


def test_argument_errors(tmp_path):
    a = make_video(tmp_path / "v.mp4", frames=2, acodec=None)
    with pytest.raises(LiveworldError, match="nope.mp4 does not exist"):
        ingest([str(a), str(tmp_path / "nope.mp4")], tmp_path / "ds", progress=False)
    with pytest.raises(LiveworldError, match="--sidecar got 1 files for 2 videos"):
        ingest([str(a), str(a)], tmp_path / "ds", sidecars=[str(a)], progress=False)
    with pytest.raises(LiveworldError, match="sidecar .*missing.jsonl does not exist"):
        ingest([str(a)], tmp_path / "ds", sidecars=[str(tmp_path / "missing.jsonl")], progress=False)
    song = tmp_path / "song.mp4"  # an audio-only file
    with av.open(str(song), "w") as c:
        s = c.add_stream("aac", rate=22050)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        fr.sample_rate, fr.pts = 22050, 0
        for p in [*s.encode(fr), *s.encode()]:
            c.mux(p)
    with pytest.raises(LiveworldError, match="song.mp4 has no video stream"):
        ingest([str(song)], tmp_path / "ds", progress=False)
    record("minigrid:Empty-8x8-v0", 1, 3, tmp_path / "rec", progress=False)
    with pytest.raises(LiveworldError, match="already holds a dataset with world='minigrid:Empty-8x8-v0'"):
        ingest([str(a)], tmp_path / "rec", progress=False)


def test_cli_ingest_and_info(tmp_path, capsys):
    a = make_video(tmp_path / "v.mp4")
    assert main(["ingest", str(a), "--out", str(tmp_path / "ds"), "--max-side", "32"]) == 0
    assert "ingested 1 files" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "ds"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frame_sizes"] == {"32x24": FRAMES} and info["modalities"] == ["video", "audio"]
    assert main(["ingest", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "ds")]) == 2
    assert "nope.mp4 does not exist" in capsys.readouterr().err
    assert os.path.exists(tmp_path / "ds" / "manifest.json")
