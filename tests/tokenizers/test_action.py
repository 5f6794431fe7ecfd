import json
import numpy as np
import pytest
import torch

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace
from liveworld.serve.keys import DOOM_KEYMAP
from liveworld.tokenizers.action import ActionEncoder

DOOM = ActionSpace("buttons", ["MOVE_FORWARD", "MOVE_BACKWARD", "TURN_LEFT", "TURN_RIGHT", "MOVE_LEFT", "MOVE_RIGHT", "ATTACK", "USE"])
ATARI = ActionSpace("discrete", ["NOOP", "FIRE", "RIGHT", "LEFT"])


def test_buttons_round_trip():
    enc = ActionEncoder(DOOM)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, (50, 8)).astype(np.int32)
    v = enc.encode(a)
    assert v.dtype == torch.float32 and v.shape == (50, 8) and enc.width == 8
    assert np.array_equal(enc.decode(v).numpy(), a)
    # a model's soft output still decodes: threshold at 0.5
    noisy = v * 0.8 + 0.1 + 0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(enc.decode(noisy).numpy(), a)
    assert enc.decode(v).dtype == torch.int32


def test_discrete_round_trip_is_one_hot():
    enc = ActionEncoder(ATARI)
    a = np.array([[0], [3], [1], [2], [2]], np.int32)
    v = enc.encode(a)
    assert v.shape == (5, 4) and torch.equal(v.sum(1), torch.ones(5)) and v[1, 3] == 1
    assert np.array_equal(enc.decode(v).numpy(), a)
    assert np.array_equal(enc.decode(v + 0.3 * torch.rand(5, 4)).numpy(), a)  # argmax survives noise < the margin


def test_none_has_width_zero():
    enc = ActionEncoder(ActionSpace("none", []))
    v = enc.encode(np.zeros((7, 0), np.int32))
    assert enc.width == 0 and v.shape == (7, 0)
    assert enc.decode(v).shape == (7, 0)
    assert enc.from_names([]).shape == (0,)


def test_from_names_matches_keymap():
    enc = ActionEncoder(DOOM)
    assert set(DOOM_KEYMAP.values()) == set(DOOM.names)  # every button reachable from the keyboard
    row = enc.from_names([DOOM_KEYMAP["KeyW"], DOOM_KEYMAP["Space"]])
    assert row.dtype == np.int32 and row.tolist() == [1, 0, 0, 0, 0, 0, 1, 0]
    assert ActionEncoder(ATARI).from_names(["LEFT"]).tolist() == [3]
    assert ActionEncoder(ATARI).from_names([]).tolist() == [0]
    assert enc.no_action().tolist() == [0] * 8


def test_dict_round_trip():
    enc = ActionEncoder.from_dict(ActionEncoder(ATARI).to_dict())
    assert enc.space == ATARI and enc.width == 4


@pytest.mark.parametrize("space, call, match", [
    (DOOM, lambda e: e.encode(np.zeros((3, 7), np.int32)), r"\[T, 8\]"),
    (DOOM, lambda e: e.encode(np.full((3, 8), 2, np.int32)), "0 or 1"),
    (DOOM, lambda e: e.encode(np.zeros((3, 8), np.float32)), "integers"),
    (ATARI, lambda e: e.encode(np.array([[4]], np.int32)), r"indices 0\.\.3"),
    (ATARI, lambda e: e.encode(np.array([[-1]], np.int32)), r"indices 0\.\.3"),
    (ATARI, lambda e: e.decode(torch.zeros(2, 3)), r"\[T, 4\]"),
    (DOOM, lambda e: e.from_names(["JUMP"]), "unknown action name"),
    (ATARI, lambda e: e.from_names(["LEFT", "RIGHT"]), "one action at a time"),
    (ActionSpace("none", []), lambda e: e.from_names(["FIRE"]), "no actions"),
])
def test_bad_inputs_raise(space, call, match):
    with pytest.raises(LiveworldError, match=match):
        call(ActionEncoder(space))


@pytest.mark.parametrize("d, match", [
    ({"kind": "joystick", "names": ["X"]}, "not one of"),
    ({"kind": "buttons", "names": ["A", "A"]}, "distinct"),
    ({"kind": "buttons"}, "'kind' and 'names'"),
])
def test_bad_spaces_raise(d, match):
    with pytest.raises(LiveworldError, match=match):
        ActionEncoder.from_dict(d)


def test_action_union_round_trips_each_world_and_keeps_worlds_apart():
    import numpy as np

    from liveworld.data.episode import ActionSpace
    from liveworld.tokenizers.action import ActionUnion

    doom = ActionSpace("buttons", ["MOVE_FORWARD", "TURN_LEFT", "ATTACK"])
    atari = ActionSpace("discrete", ["NOOP", "FIRE", "RIGHT", "LEFT"])
    grid = ActionSpace("discrete", ["left", "right", "forward", "pickup", "drop", "toggle", "done"])
    union = ActionUnion({"doom:deathmatch": doom, "atari:Breakout": atari, "babyai:GoToRedBall-v0": grid})
    assert union.width == 3 + 4 + 7
    rng = np.random.default_rng(0)
    rows = {"doom:deathmatch": rng.integers(0, 2, (20, 3)), "atari:Breakout": rng.integers(0, 4, (20, 1)),
            "babyai:GoToRedBall-v0": rng.integers(0, 7, (20, 1))}
    for world, a in rows.items():
        v = union.encode(world, a)
        assert v.shape == (20, 14)
        outside = torch.ones(14, dtype=torch.bool)
        outside[union.block(world)] = False
        assert (v[:, outside] == 0).all()  # another world's columns stay silent
        np.testing.assert_array_equal(union.decode(world, v).numpy(), a)
    again = ActionUnion.from_dict(json.loads(json.dumps(union.to_dict())))
    assert again.offsets == union.offsets and again.width == union.width
    with pytest.raises(LiveworldError, match="not in this model"):
        union.encode("minigrid:Empty-8x8-v0", rows["atari:Breakout"])


def test_worlds_of_one_action_space_share_its_columns():
    from liveworld.data.episode import ActionSpace
    from liveworld.tokenizers.action import ActionUnion

    doom = ActionSpace("buttons", ["MOVE_FORWARD", "TURN_LEFT", "ATTACK"])
    atari = ActionSpace("discrete", ["NOOP", "FIRE", "RIGHT", "LEFT"])
    union = ActionUnion({"doom:deathmatch": doom, "atari:Breakout": atari, "doom:defend_the_center": doom})
    assert union.width == 3 + 4
    assert union.block("doom:defend_the_center") == union.block("doom:deathmatch") == slice(0, 3)
    a = np.array([[0, 0, 1]])
    assert torch.equal(union.encode("doom:deathmatch", a), union.encode("doom:defend_the_center", a))
