import json

from liveworld.bench.train import bench_train


def test_bench_train_counts_predicted_frames_and_flops(capsys):
    res = bench_train("tiny-stack", steps=1, warmup=1, threads=1, grid=(3, 4))
    # tiny-stack: 4 clips of 3 stacked + 2 predicted frames; only the 2 count
    assert res["clip_frames"] == 5 and res["predicted_frames_per_step"] == 8
    assert res["gflop_per_predicted_frame"] > 0 and res["predicted_frames_per_s"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["preset"] == "tiny-stack"


def test_bench_train_measures_a_checkpoint_at_its_worlds_shapes(tiny_run):
    from liveworld.world import load_world_model, load_world_tokenizers

    res = bench_train(checkpoint=str(tiny_run), steps=1, warmup=1, threads=1)
    model, meta = load_world_model(tiny_run)
    assert tuple(res["grid"]) == tuple(load_world_tokenizers(meta).grid)  # not Doom's (6, 8)
    assert res["grid"] != [6, 8] and res["params_m"] == round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
