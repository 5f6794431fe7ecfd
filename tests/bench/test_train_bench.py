import json

from liveworld.bench.train import bench_train


def test_bench_train_counts_predicted_frames_and_flops(capsys):
    res = bench_train("tiny-stack", steps=1, warmup=1, threads=1, grid=(3, 4))
    # tiny-stack: 4 clips of 3 stacked + 2 predicted frames; only the 2 count
    assert res["clip_frames"] == 5 and res["predicted_frames_per_step"] == 8
    assert res["gflop_per_predicted_frame"] > 0 and res["predicted_frames_per_s"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["preset"] == "tiny-stack"
