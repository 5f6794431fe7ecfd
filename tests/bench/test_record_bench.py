import json

from liveworld.bench.record import WORLDS, bench_record


def test_bench_record_prints_table_then_one_json_line(capsys):
    res = bench_record(steps=20)
    out = capsys.readouterr().out.strip().splitlines()
    assert "record benchmark" in out[0] or "record benchmark" in "\n".join(out[:3])
    last = json.loads(out[-1])
    assert last == json.loads(json.dumps(res))
    assert last["bench"] == "record" and last["date"] and last["machine"]
    assert list(last["worlds"]) == list(WORLDS)
    for name, r in last["worlds"].items():
        assert "error" not in r, f"{name}: {r}"
        assert 0 < r["frames"] <= 20 and r["sim_fps"] > 0 and r["record_fps"] > 0 and r["bytes_per_frame"] > 0
        w, h = map(int, r["frame_size"].split("x"))
        assert w > 0 and h > 0
    assert last["worlds"]["doom:deathmatch"]["frame_size"] == "160x120"


def test_bench_record_json_only(capsys):
    bench_record(steps=3, as_json=True, worlds=("minigrid:Empty-8x8-v0",))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0])["worlds"]["minigrid:Empty-8x8-v0"]["frames"] == 3
