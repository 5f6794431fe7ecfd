import json

from liveworld.cli import main


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["record", "--world", "quake:e1m1", "--episodes", "1", "--steps", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert err.startswith("liveworld: error: world 'quake:e1m1' must be FAMILY:NAME") and "Traceback" not in err


def test_record_then_info_json(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["record", "--world", "minigrid:Empty-8x8-v0", "--episodes", "2", "--steps", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"episodes", "frames", "modalities", "frame_sizes"} <= set(info)
    assert info["episodes"] == 2 and info["modalities"] == ["video", "action", "text"]


def test_info_of_missing_dataset(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
