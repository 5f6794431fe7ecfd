"""The page's world picker and prompt box, served from a checkpoint of two worlds."""

import json

import numpy as np
from fastapi.testclient import TestClient

from liveworld.engine.runner import WorldEngine
from liveworld.serve.app import create_app
from liveworld.serve.keys import keymap_for_names
from liveworld.tokenizers.action import compose

from tests.serve.test_server import LOCAL, read_frame, ws_url


def engines(run):
    first = WorldEngine.load(run, device="cpu", threads=1)
    return {w: WorldEngine.for_world(first.model, first.meta, w, first.device)
            for w in ("doom:deathmatch", "minigrid:Empty-8x8-v0")}


def test_each_world_has_its_info_keys_and_stream(tiny_worlds):
    run, _, _ = tiny_worlds
    with TestClient(create_app(engines(run), fps=50), base_url=LOCAL) as client:
        doom = client.get("/info").json()
        assert doom["world"] == "doom:deathmatch" and [w["name"] for w in doom["worlds"]] == ["doom:deathmatch", "minigrid:Empty-8x8-v0"]
        grid = client.get("/info", params={"world": "minigrid:Empty-8x8-v0"}).json()
        assert (grid["width"], grid["height"]) == (24, 24)
        assert grid["keymap"]["ArrowUp"] == "forward" and grid["keymap"]["Space"] == "toggle"
        assert client.get("/info", params={"world": "atari:Pong"}).status_code == 404
        with client.websocket_connect(ws_url(client, "/ws?world=minigrid:Empty-8x8-v0")) as ws:
            header, _ = read_frame(ws)
            assert (header["width"], header["height"]) == (24, 24)
            ws.send_text(json.dumps({"type": "keys", "keys": ["ArrowUp"]}))
            header, _ = read_frame(ws)
            assert header["index"] >= 0
            # start over from words alone: a blank opening, then frames made from the text
            ws.send_text(json.dumps({"type": "reset", "prompt": "get to the green goal square"}))
            while True:
                header, data = read_frame(ws)
                if header["index"] == 0 and header["text"] == "get to the green goal square":
                    break
            n = 4 + len(json.dumps(header).encode())
            assert not np.frombuffer(data[n:n + 24 * 24 * 3], np.uint8).any()  # the blank before the first frame
            ws.send_text(json.dumps({"type": "reset", "prompt": ""}))
            while not (msg := ws.receive()).get("text"):
                pass
            assert "non-empty" in json.loads(msg["text"])["message"]


def test_keys_compose_into_a_discrete_worlds_actions():
    atari = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPFIRE", "RIGHTFIRE"]
    keys = keymap_for_names(atari)
    assert keys["Space"] == "FIRE" and keys["ArrowLeft"] == "LEFT"
    assert compose(["RIGHT", "FIRE"], atari) == ["RIGHTFIRE"] and compose(["UP", "RIGHT"], atari) == ["UPRIGHT"]
    assert compose([], atari) == ["NOOP"] and compose(["DOWN", "FIRE"], atari) == ["DOWN"]
    grid = ["left", "right", "forward", "pickup", "drop", "toggle", "done"]
    assert compose([], grid) == ["done"]  # MiniGrid has no NOOP; "done" changes nothing
    assert keymap_for_names(["jump", "duck"]) == {"Digit1": "jump", "Digit2": "duck"}
