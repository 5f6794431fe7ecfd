def test_serve_bench_plays_real_clients_beside_malformed_messages_and_churn(tiny_run, capsys):
    import json

    from liveworld.bench.serve import bench_serve

    res = bench_serve(str(tiny_run), clients=2, seconds=2.0, fps=20, threads=1, fuzz=200, churn=10)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == res
    for key in ("single_client_fps", "aggregate_fps", "client_fps", "latency_ms_p95", "rss_mb_start", "rss_mb_end"):
        assert key in res
    assert len(res["client_fps"]) == 2 and all(f > 5 for f in res["client_fps"]), res  # both players were served
    assert res["server_alive"] and res["server_tracebacks"] == 0 and not res["client_errors"]
    assert res["fuzz_messages"] == 200 and res["churns"] == 10
