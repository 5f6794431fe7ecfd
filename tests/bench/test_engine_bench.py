"""`bench engine` with a bank that fills as frames leave the window: the stream's memory stays
at its capacity, and the JSON says so."""

from liveworld.bench.engine import bench_engine


def test_engine_bench_streams_with_a_bounded_memory(tiny_run, capsys):
    res = bench_engine(str(tiny_run), frames=24, threads=1, sweep=(1,), sweep_frames=4, memory_units=4, top_k=2)
    assert res["memory_units"] == 4 and res["memory_units_held"] == 4  # 21 frames left the window; 4 stay
    assert res["cache_frames"] <= 3 and res["fps_p50"] > 0
    assert '"memory_units_held": 4' in capsys.readouterr().out.strip().splitlines()[-1]
