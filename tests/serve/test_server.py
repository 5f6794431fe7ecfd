import json
import struct

import pytest
from fastapi.testclient import TestClient

from liveworld.engine.runner import WorldEngine
from liveworld.serve.access import Access
from liveworld.serve.app import MAX_DEPTH, MAX_MESSAGE_BYTES, create_app, parse_message

LOCAL = "http://127.0.0.1:8000"


def ws_url(client: TestClient, path: str = "/ws") -> str:
    """TestClient names the host 'testserver' for a relative WebSocket path: give it the client's."""
    return str(client.base_url).replace("http", "ws", 1).rstrip("/") + path


@pytest.fixture(scope="module")
def engine(tiny_run):
    return WorldEngine.load(tiny_run, device="cpu", threads=1)


def read_frame(ws):
    while True:
        msg = ws.receive()
        if msg.get("bytes") is not None:
            data = msg["bytes"]
            n = struct.unpack("<I", data[:4])[0]
            return json.loads(data[4:4 + n]), data
        # text messages (errors, pongs) are skipped here


def test_page_and_info(engine):
    with TestClient(create_app(engine, fps=50), base_url=LOCAL) as client:
        assert "<canvas" in client.get("/").text
        info = client.get("/info").json()
        assert info["width"] == 32 and info["height"] == 24 and info["keymap"]["KeyW"] == "MOVE_FORWARD"


def test_bad_messages_get_errors_and_others_keep_playing(engine):
    with TestClient(create_app(engine, fps=50), base_url=LOCAL) as client:
        with client.websocket_connect(ws_url(client)) as bad, client.websocket_connect(ws_url(client)) as good:
            header, data = read_frame(good)
            assert header["index"] == 0 and len(data) > 32 * 24 * 3
            for raw, expect in (("{not json", "not JSON"), ("x" * (MAX_MESSAGE_BYTES + 1), "over the limit"),
                                (json.dumps({"type": "teleport"}), "unknown message type"),
                                (json.dumps({"type": "keys", "keys": "KeyW"}), "list of at most 16"),
                                (json.dumps([1, 2]), "JSON object")):
                bad.send_text(raw)
                while True:
                    msg = bad.receive()
                    if msg.get("text"):
                        break
                assert expect in json.loads(msg["text"])["message"]
            bad.send_bytes(b"\x00\x01")
            while not (msg := bad.receive()).get("text"):
                pass
            assert "binary" in json.loads(msg["text"])["message"]
            good.send_text(json.dumps({"type": "keys", "keys": ["KeyW"], "t": 123.0}))
            seen = [read_frame(good)[0] for _ in range(6)]
            assert seen[-1]["index"] > seen[0]["index"]
            assert any(h["ack_t"] == 123.0 for h in seen)
            bad.send_text(json.dumps({"type": "ping", "t": 5}))  # the bad client is still served too
            while not (msg := bad.receive()).get("text"):
                pass
            assert json.loads(msg["text"]) == {"type": "pong", "t": 5}


def test_parse_message_maps_keys_to_actions():
    keymap = {"KeyW": "MOVE_FORWARD", "Space": "ATTACK"}
    kind, p = parse_message(json.dumps({"type": "keys", "keys": ["Space", "KeyW", "KeyZ"], "t": 1}), keymap)
    assert kind == "keys" and p["actions"] == ["ATTACK", "MOVE_FORWARD"]
    with pytest.raises(ValueError, match="at most 200"):
        parse_message(json.dumps({"type": "text", "text": "x" * 201}), keymap)


@pytest.mark.parametrize("raw, expect", [
    ('{"type": "ping", "t": NaN}', "finite"),
    ('{"type": "keys", "keys": [], "t": Infinity}', "finite"),
    ("[" * 2000 + "]" * 2000, "nested deeper"),
    ('{"type": "text", "text": "\\ud800"}', "lone surrogate"),  # valid JSON, not encodable text
    ('{"type": "keys", "keys": [[[["KeyW"]]]]}', "nested deeper"),
    ('{"type": "text", "text": "' + "é" * 2100 + '"}', "bytes is over the limit"),  # 2,100 characters, 4,200+ bytes
])
def test_parse_message_refuses_what_json_allows_but_browsers_cannot_read(raw, expect):
    with pytest.raises(ValueError, match=expect):
        parse_message(raw, {"KeyW": "MOVE_FORWARD"})
    assert MAX_DEPTH >= 2  # a keys message itself is depth 2


def test_timestamps_that_are_not_finite_numbers_are_never_echoed():
    assert parse_message('{"type": "ping", "t": 1e400}', {})[1]["t"] is None  # overflows to inf
    assert parse_message('{"type": "ping", "t": true}', {})[1]["t"] is None
    assert parse_message('{"type": "ping", "t": 3}', {})[1]["t"] == 3.0


def _refused(client, path="/ws", **headers) -> bool:
    from starlette.websockets import WebSocketDisconnect

    try:
        with client.websocket_connect(ws_url(client, path), headers=headers):
            return False
    except WebSocketDisconnect as e:
        return e.code == 1008


def test_only_loopback_names_and_pages_may_connect(engine):
    app = create_app(engine, fps=50)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/info").status_code == 200
        assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
        assert not _refused(client)  # no Origin: a script on this machine
        assert not _refused(client, origin=LOCAL)  # the server's own page
        assert _refused(client, origin="http://evil.example")  # another site open in the same browser
        assert _refused(client, origin="http://127.0.0.1:9999")  # another local page, other port
        assert _refused(client, origin="null")
    with TestClient(create_app(engine, fps=50), base_url="http://evil.example:8000") as rebound:  # DNS rebinding: a name that resolves here
        r = rebound.get("/")
        assert r.status_code == 403 and "not allowed" in r.text
        assert _refused(rebound)
    allowed = create_app(engine, fps=50, access=Access.for_bind("127.0.0.1", allow_origins=("http://tools.example:3000",)))
    with TestClient(allowed, base_url=LOCAL) as client:
        assert not _refused(client, origin="http://tools.example:3000")
        assert _refused(client, origin="http://tools.example:3001")


def test_a_non_loopback_bind_always_has_a_token_and_checks_it_everywhere(engine):
    access = Access.for_bind("0.0.0.0")
    assert access.token and len(access.token) >= 16
    assert Access.for_bind("0.0.0.0").token != access.token  # generated, not fixed
    with pytest.raises(ValueError, match="at least 16"):
        Access.for_bind("0.0.0.0", token="short")
    with pytest.raises(ValueError, match="http://host:port"):
        Access.for_bind("127.0.0.1", allow_origins=("tools.example",))
    app = create_app(engine, fps=50, access=access, api_docs=True)
    with TestClient(app, base_url="http://192.168.1.20:8000") as client:
        r = client.get("/")
        assert r.status_code == 403 and "needs its token" in r.text
        assert client.get("/?token=" + "x" * len(access.token)).status_code == 403
        assert client.get("/?token=" + access.token).status_code == 200
        assert client.get("/openapi.json?token=" + access.token).status_code == 200  # asked for
        assert _refused(client)
        assert _refused(client, "/ws?token=" + access.token, origin="http://evil.example")
        with client.websocket_connect(ws_url(client, "/ws?token=" + access.token), headers={"origin": "http://192.168.1.20:8000"}) as ws:
            assert read_frame(ws)[0]["index"] == 0


def test_a_player_who_sends_nothing_loses_the_slot_to_the_next(engine):
    app = create_app(engine, fps=50, max_clients=1, idle_timeout=0.5)
    with TestClient(app, base_url=LOCAL) as client:
        with client.websocket_connect(ws_url(client)) as idle:
            assert read_frame(idle)[0]["index"] == 0
            while not (msg := idle.receive()).get("text"):  # frames until the slot is taken back
                pass
            assert "no input for" in json.loads(msg["text"])["message"]
        with client.websocket_connect(ws_url(client)) as nxt:  # the slot is free again
            assert read_frame(nxt)[0]["index"] == 0


def test_players_due_together_step_in_one_round(engine):
    app = create_app(engine, fps=20)
    with TestClient(app, base_url=LOCAL) as client:
        with client.websocket_connect(ws_url(client)) as a, client.websocket_connect(ws_url(client)) as b, \
                client.websocket_connect(ws_url(client)) as c:
            for _ in range(8):
                for ws in (a, b, c):
                    header = read_frame(ws)[0]
            worker = app.state.worker
            assert max(worker.batch_sizes) >= 2, worker.batch_sizes
            assert header["promised_fps"] > 0 and header["promised_fps"] <= 20.0 + 1e-6


def test_malformed_host_or_origin_is_refused_not_a_server_error(engine):
    with TestClient(create_app(engine, fps=50), base_url=LOCAL) as client:
        assert client.get("/info", headers={"host": "[::1"}).status_code == 403
        assert client.get("/info", headers={"origin": "http://[x"}).status_code == 403


def test_a_failing_round_restarts_its_players_and_the_model_thread_lives(engine, monkeypatch):
    app = create_app(engine, fps=50)
    real = engine.step_batch
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("a bug in one round")
        return real(*args, **kw)

    monkeypatch.setattr(engine, "step_batch", flaky)
    with TestClient(app, base_url=LOCAL) as client:
        with client.websocket_connect(ws_url(client)) as ws:
            notices = []
            frames = 0
            while frames < 8:
                msg = ws.receive()
                if msg.get("text"):
                    notices.append(json.loads(msg["text"])["message"])
                elif msg.get("bytes"):
                    frames += 1
            assert any("starts over" in n for n in notices) and app.state.worker.is_alive()


def test_resets_are_rate_limited(engine):
    with TestClient(create_app(engine, fps=50), base_url=LOCAL) as client:
        with client.websocket_connect(ws_url(client)) as ws:
            read_frame(ws)
            ws.send_text(json.dumps({"type": "reset"}))
            ws.send_text(json.dumps({"type": "reset"}))
            while not (msg := ws.receive()).get("text"):
                pass
            assert "reset at most once" in json.loads(msg["text"])["message"]
