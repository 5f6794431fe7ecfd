import json

from liveworld.cli import main
from liveworld.eval.evaluate import evaluate


def test_eval_end_to_end_on_a_tiny_model(tiny_world, tiny_run, tmp_path, capsys):
    res = evaluate(str(tiny_run), str(tiny_world / "data"), steps=1, frames=8, starts=2,
                   stability_frames=12, report=str(tmp_path / "report"), horizons=(1, 4, 8), revisit_count=1)
    for k in ("next_frame_psnr_db", "copy_last_psnr_db", "rollout_psnr_db", "action_delta_psnr_db", "audio_lsd_db"):
        assert k in res
    assert set(res["rollout_psnr_db"]) == {"1", "4", "8"}
    assert 0 <= res["stability"]["frac_in_real_range"] <= 1
    assert res["stability"]["nearest_real_psnr_db_real"] > 0
    assert (tmp_path / "report" / "index.html").exists() and (tmp_path / "report" / "strips.png").exists()
    # a fresh revisit route: the window-only model against holding the view before leaving
    assert res["revisit_pairs"] >= 1 and res["revisit_gap_frames"]["min"] >= 32
    assert "revisit_psnr_db" not in res and res["revisit_psnr_db_no_memory"][">=32"] is not None
    assert (tmp_path / "report" / "revisits.png").exists()
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tiny_run), "--data", str(tiny_world / "data"), "--frames", "4",
                 "--starts", "1", "--stability-frames", "0", "--horizons", "1,8", "--revisit-episodes", "0"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "next-frame PSNR" in out[2]
    assert "rollout_psnr_db" in json.loads(out[-1])


def test_eval_of_two_worlds_gives_each_its_figures_and_the_text_figures(tiny_worlds, capsys):
    run, data, _ = tiny_worlds
    assert main(["eval", "--checkpoint", str(run), "--data", data, "--frames", "4", "--starts", "1",
                 "--stability-frames", "0", "--horizons", "1,8", "--revisit-episodes", "0", "--split", "all"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(res["worlds"]) == ["doom:deathmatch", "minigrid:Empty-8x8-v0"]
    for w, r in res["worlds"].items():
        assert r["world"] == w and "next_frame_gain_db" in r and "action_delta_psnr_db" in r
        assert isinstance(r["text_delta_psnr_db"], float)
    doom = res["worlds"]["doom:deathmatch"]
    assert "audio_edge_click_db" in doom and "shot_audio_recall" in doom and "audio_lsd_copy_last_db" in doom
    assert 0 <= res["text_to_world_accuracy"] <= 1 and 0 <= res["text_to_world_accuracy_any_grid"] <= 1
    assert sum(res["text_to_world_assigned"]["doom:deathmatch"].values()) == res["text_to_world_samples"]
    # one world alone: today's single-world JSON
    assert main(["eval", "--checkpoint", str(run), "--world", "minigrid:Empty-8x8-v0", "--data", data.split(",")[1],
                 "--frames", "4", "--starts", "1", "--stability-frames", "0", "--horizons", "1,8", "--revisit-episodes", "0",
                 "--split", "all"]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert one["world"] == "minigrid:Empty-8x8-v0" and "worlds" not in one
