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
