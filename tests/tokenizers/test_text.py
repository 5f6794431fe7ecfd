import json

import numpy as np
import pytest

from liveworld.common import LiveworldError
from liveworld.data.episode import ActionSpace, Episode
from liveworld.data.shards import Dataset
from liveworld.tokenizers.text import BOS_ID, EOS_ID, TextTokenizer, TextTokenizerConfig, train_text_tokenizer

TEXTS = ["Picked up a shotgun.", "Picked up a box of shells.", "A door opens.", "Picked up a shotgun."]
HARD = [
    "",
    "Picked up a shotgun.",
    "  two leading spaces, a tab\tand\r\nline breaks\n",
    "unicode: héllo wörld, ✓, 日本語, emoji 🎮👾",
    "<pad><bos><eos> written literally",
    "never seen: zqxj 0123456789 !@#$%^&*()",
]


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer.train(TEXTS, TextTokenizerConfig(vocab_size=320))


@pytest.mark.parametrize("s", HARD)
def test_round_trip_is_exact(tok, s):
    ids = tok.encode(s)
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == s
    assert tok.decode(tok.encode(s, add_special=True)) == s


def test_merges_make_known_text_short(tok):
    s = "Picked up a shotgun."
    assert len(tok.encode(s)) < len(s.encode()) / 2  # BPE learned the repeated caption
    assert tok.vocab_size <= 320
    ids = tok.encode(s, add_special=True)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert BOS_ID not in tok.encode("<bos>")  # a literal special token is just text


def test_save_load_round_trip(tok, tmp_path):
    tok.save(tmp_path / "text")
    meta = json.loads((tmp_path / "text" / "config.json").read_text())
    assert meta["kind"] == "text_tokenizer" and meta["config"]["vocab_size"] == 320 and meta["vocab_size"] == tok.vocab_size
    back = TextTokenizer.load(tmp_path / "text")
    for s in HARD:
        assert back.encode(s) == tok.encode(s) and back.decode(back.encode(s)) == s


def test_bad_inputs_raise(tok, tmp_path):
    with pytest.raises(LiveworldError, match="at least 259"):
        TextTokenizer.train(TEXTS, TextTokenizerConfig(vocab_size=100))
    with pytest.raises(LiveworldError, match="outside"):
        tok.decode([tok.vocab_size + 5])
    with pytest.raises(LiveworldError, match="surrogate"):
        tok.encode("bad \ud800")
    with pytest.raises(LiveworldError, match="does not exist"):
        TextTokenizer.load(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text(json.dumps({"kind": "text_tokenizer", "config": {}}))
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    with pytest.raises(LiveworldError, match="not a valid tokenizer"):
        TextTokenizer.load(tmp_path / "broken")


def _tiny_dataset(root) -> Dataset:
    ds = Dataset.create_or_resume(root, {"world": "test"})
    for i, (desc, text) in enumerate([("A grey room.", [(0, "Picked up a key."), (2, "A door opens.")]), ("A grey room.", [])]):
        ep = Episode(frames=np.zeros((3, 4, 4, 3), np.uint8), actions=np.zeros((3, 0), np.int32), timestamps=np.arange(3.0),
                     text=text, meta={"world": "test", "fps": 10, "action_space": ActionSpace("none", []).to_dict(), "description": desc})
        ds.add(i, ep, "train", i)
    return ds


def test_train_on_dataset(tmp_path):
    ds = _tiny_dataset(tmp_path / "ds")
    m = train_text_tokenizer(Dataset.open(tmp_path / "ds"), str(tmp_path / "text"))
    assert m["texts"] == 4 and m["distinct_texts"] == 3 and m["vocab_size"] >= 259 and m["mean_tokens_per_text"] > 0
    tok = TextTokenizer.load(tmp_path / "text")
    assert tok.decode(tok.encode("Picked up a key.")) == "Picked up a key."
    with pytest.raises(LiveworldError, match="already holds"):
        train_text_tokenizer(ds, str(tmp_path / "text"))
