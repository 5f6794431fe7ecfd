"""Text tokenizer for prompts and notifications: byte-level BPE (the GPT-2 scheme) trained with
Hugging Face `tokenizers` on a dataset's texts plus a small built-in seed corpus.

Byte level means the base vocabulary is the 256 bytes, so any UTF-8 string encodes without an
unknown token and decodes back exactly; BPE merges only make common words shorter. The seed
corpus gives a tiny dataset (one description, a few captions) sensible merges for generic
world descriptions. Ids 0, 1, 2 are <pad>, <bos>, <eos>; they are never produced from text (a
literal "<pad>" in a caption is encoded as ordinary bytes), only by `encode(..., add_special=True)`.

Saved as a directory: `tokenizer.json` (the Hugging Face file, usable on its own) and
`config.json` {"kind": "text_tokenizer", "config": {...}, "vocab_size": n} as checkpoints have.

This module knows strings and ids, not the world model (which only needs `vocab_size`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from liveworld.checkpoint import config_from_dict, config_to_dict, read_checkpoint_meta
from liveworld.common import LiveworldError, atomic_path, write_json_atomic

KIND = "text_tokenizer"
SPECIALS = ("<pad>", "<bos>", "<eos>")
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
MIN_VOCAB = 256 + len(SPECIALS)  # the byte alphabet and the special tokens

SEED_CORPUS = (
    "The player walks forward through a dark corridor.",
    "A door opens and a monster appears in the room.",
    "The player turns left, then right, and shoots at the enemy.",
    "An explosion shakes the walls; smoke fills the hall.",
    "The hero jumps over a gap and lands on a moving platform.",
    "A ball bounces off the paddle and breaks a row of bricks.",
    "The ghost chases the player around the maze.",
    "Picked up a health pack. Picked up a box of ammunition.",
    "The level is complete. The score increases by one hundred points.",
    "A car drives down a wet street at night, its lights reflecting on the road.",
    "Rain falls on a quiet forest; birds fly between the trees.",
    "A person opens the window and looks outside at the sunny garden.",
    "The camera pans across a sandy beach while waves roll in.",
    "The agent moves up, down, left and right on a small grid.",
    "You found a key. The red door is locked; you need the red key.",
    "Enemies attack from the left. Watch out for the lava!",
    "A bright room with white walls, a table and two chairs.",
    "The spaceship fires a laser and the asteroid breaks into pieces.",
    "Game over. Press start to play again.",
    "A narrow bridge crosses a river under a cloudy sky.",
    "The player picks up a shotgun and reloads it.",
    "Footsteps echo in the empty warehouse; a light flickers overhead.",
    "The cat walks slowly across the kitchen floor.",
    "Snow covers the mountains and the road winds through the valley.",
)


@dataclass(frozen=True)
class TextTokenizerConfig:
    vocab_size: int = 512  # upper bound: a small corpus may yield fewer merges
    min_frequency: int = 2  # a pair must occur this often to become a merge


class TextTokenizer:
    def __init__(self, tokenizer: Tokenizer, cfg: TextTokenizerConfig):
        self.tokenizer = tokenizer
        self.cfg = cfg
        # Special tokens written in a string are encoded as plain text: a caption cannot inject them.
        self.tokenizer.encode_special_tokens = True

    # -- building ------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], cfg: TextTokenizerConfig = TextTokenizerConfig(), seed: bool = True) -> "TextTokenizer":
        """Trains the BPE on `texts` (plus the seed corpus when `seed`)."""
        if cfg.vocab_size < MIN_VOCAB:
            raise LiveworldError(f"text vocab_size {cfg.vocab_size} is too small: byte-level BPE needs at least {MIN_VOCAB} "
                                 f"(256 bytes + {len(SPECIALS)} special tokens)")
        tok = Tokenizer(models.BPE())
        # add_prefix_space=False: a prefix space would not survive decoding, breaking exact round trips.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, special_tokens=list(SPECIALS),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        corpus = [t for t in texts if t] + (list(SEED_CORPUS) if seed else [])
        tok.train_from_iterator(corpus, trainer)
        for i, s in enumerate(SPECIALS):  # the ids the rest of liveworld relies on
            if tok.token_to_id(s) != i:
                raise LiveworldError(f"BPE training put {s!r} at id {tok.token_to_id(s)}, expected {i}; the tokenizers library changed")
        return cls(tok, cfg)

    # -- using ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """The actual number of ids (<= cfg.vocab_size); a model's embedding needs at least this many."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str, add_special: bool = False) -> list[int]:
        """str -> ids; with `add_special`, wrapped in <bos> ... <eos>."""
        if not isinstance(text, str):
            raise LiveworldError(f"text tokenizer encodes str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise LiveworldError(f"text {text[:40]!r} is not valid Unicode ({e.reason}); remove the lone surrogate") from e
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return [BOS_ID, *ids, EOS_ID] if add_special else ids

    def decode(self, ids: Sequence[int]) -> str:
        """ids -> str; <pad>, <bos>, <eos> are dropped."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise LiveworldError(f"token ids {bad[:5]} are outside this tokenizer's vocabulary of {self.vocab_size}; "
                                 f"the ids come from another tokenizer or a model with a larger text_vocab")
        return self.tokenizer.decode([i for i in ids if i >= len(SPECIALS)], skip_special_tokens=False)

    # -- storage -------------------------------------------------------------------------
    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        """Writes tokenizer.json, then config.json (last: a directory with config.json is complete)."""
        path = Path(path)
        with atomic_path(path / "tokenizer.json") as tmp:
            tmp.write_text(self.tokenizer.to_str())
        write_json_atomic(path / "config.json", {"kind": KIND, "config": config_to_dict(self.cfg),
                                                 "vocab_size": self.vocab_size, **(extra or {})})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TextTokenizer":
        path = Path(path)
        meta = read_checkpoint_meta(path, KIND)
        f = path / "tokenizer.json"
        if not f.exists():
            raise LiveworldError(f"{f} is missing; retrain with `liveworld train-tokenizer --modality text --out {path}`")
        try:
            tok = Tokenizer.from_file(str(f))
        except Exception as e:  # the library raises a bare Exception for malformed files
            raise LiveworldError(f"{f} is not a valid tokenizer file ({e}); retrain or restore it") from e
        return cls(tok, config_from_dict(TextTokenizerConfig, meta["config"]))


def dataset_texts(ds) -> list[str]:
    """Every episode's description and notifications/captions, in every split: the vocabulary
    is not a learned predictor, and a caption that only a validation episode has should not be
    spelled out byte by byte."""
    texts = []
    for ep in ds.episodes():
        if ep.meta.get("description"):
            texts.append(ep.meta["description"])
        texts += [s for _, s in ep.text]
    return texts


def train_text_tokenizer(sets, out: str, cfg: TextTokenizerConfig = TextTokenizerConfig()) -> dict:
    """`liveworld train-tokenizer --modality text`: trains on the texts of one dataset or of a
    list of them (one tokenizer for several worlds) and saves to `out`."""
    out_path = Path(out)
    if (out_path / "config.json").exists():
        raise LiveworldError(f"{out} already holds a tokenizer; a world model trained with it depends on its ids. "
                             f"Choose another --out or delete {out} first")
    texts = [t for ds in (sets if isinstance(sets, list) else [sets]) for t in dataset_texts(ds)]
    tok = TextTokenizer.train(texts, cfg)
    distinct = sorted(set(texts))
    lengths = [len(tok.encode(s)) for s in distinct]
    metrics = {
        "vocab_size": tok.vocab_size,
        "texts": len(texts),
        "distinct_texts": len(distinct),
        "mean_tokens_per_text": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "max_tokens_per_text": max(lengths, default=0),
        "bytes_per_token": round(sum(len(s.encode()) for s in distinct) / max(1, sum(lengths)), 2),
    }
    tok.save(out_path, extra={"metrics": metrics})
    print(f"text tokenizer: {metrics} -> {out_path}")
    return metrics
