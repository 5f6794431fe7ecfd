import json
import struct

import pytest
from fastapi.testclient import TestClient

from liveworld.engine.runner import WorldEngine
from liveworld.serve.app import MAX_MESSAGE_BYTES, create_app, parse_message


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
    with TestClient(create_app(engine, fps=50)) as client:
        assert "<canvas" in client.get("/").text
        info = client.get("/info").json()
        assert info["width"] == 32 and info["height"] == 24 and info["keymap"]["KeyW"] == "MOVE_FORWARD"


def test_bad_messages_get_errors_and_others_keep_playing(engine):
    with TestClient(create_app(engine, fps=50)) as client:
        with client.websocket_connect("/ws") as bad, client.websocket_connect("/ws") as good:
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
