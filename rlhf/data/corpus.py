"""English dialogues shipped by ``chatterbot-corpus``, and the contexts cut from them.

The corpus is the offline default for everything: pretraining the default policy, prompts for the
environments and PPO, candidate replies and the user simulator.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from rlhf.data.alice import alice_dialogues
from rlhf.data.chat import clean_turn, words


@dataclass(frozen=True)
class DialogueContext:
    """A point in a dialogue where the bot speaks next.

    ``turns`` alternate user/bot and end on a user turn; ``continuation`` is what the bot of the real
    dialogue said next (empty when unknown) and ``rest`` the turns after that.
    """

    turns: tuple[str, ...]
    continuation: str = ""
    rest: tuple[str, ...] = ()
    dialogue_id: str = ""


def turns_of(context: DialogueContext | Sequence[str]) -> tuple[str, ...]:
    """The turns of a context given as a :class:`DialogueContext` or as a sequence of turns."""
    return context.turns if isinstance(context, DialogueContext) else tuple(context)


def corpus_dir() -> Path:
    """Folder of the English YAML files inside the installed ``chatterbot-corpus`` package."""
    import chatterbot_corpus

    return Path(chatterbot_corpus.__file__).parent / "data" / "english"


@lru_cache(maxsize=1)
def load_dialogues() -> tuple[tuple[str, ...], ...]:
    """All English dialogues of chatterbot-corpus, in a stable order, turns cleaned to one line.

    Each dialogue id is ``<category>/<index>``; see :func:`dialogue_ids`.
    """
    return tuple(d for _, d in _load_with_ids())


def dialogue_ids() -> tuple[str, ...]:
    """Ids ``<category>/<index>`` of :func:`load_dialogues`, position for position."""
    return tuple(i for i, _ in _load_with_ids())


@lru_cache(maxsize=1)
def _load_with_ids() -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for path in sorted(corpus_dir().glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for i, conversation in enumerate(data.get("conversations") or []):
            turns = tuple(clean_turn(t) for t in conversation if t is not None and clean_turn(t))
            if len(turns) >= 2:
                out.append((f"{path.stem}/{i}", turns))
    if not out:
        raise RuntimeError(f"no dialogues found under {corpus_dir()}: is chatterbot-corpus installed intact?")
    return tuple(out)


def corpus_fingerprint() -> str:
    """A short hash of the corpus text: caches built from it are keyed on it."""
    h = hashlib.sha256()
    for did, turns in _load_with_ids():
        h.update(did.encode())
        h.update("\x00".join(turns).encode())
    return h.hexdigest()[:12]


@lru_cache(maxsize=1)
def corpus_turn_keys() -> frozenset[str]:
    """The normalised text (lower-cased words) of every turn of every corpus dialogue, either side of any split:
    extra pretraining text whose turns are in it is dropped."""
    return frozenset(" ".join(words(t)) for d in load_dialogues() for t in d)


def split_indices(n: int, heldout_fraction: float, seed: int, what: str = "items") -> tuple[list[int], list[int]]:
    """Indices of (train, held-out) items among ``n``: a seeded shuffle, the same on every machine.

    Raises ``ValueError`` when the fraction leaves no training or no held-out item (``what`` names them).
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    n_heldout = max(1, round(n * heldout_fraction))  # any fraction holds out at least one item
    if n_heldout > n - 1:
        side = "no training"
        raise ValueError(
            f"heldout_fraction {heldout_fraction} of {n} distinct {what} leaves {side} {what}: "
            f"pick a fraction between {1 / n:.3g} and {1 - 1 / n:.3g} or add {what}"
        )
    indices = list(range(n))
    random.Random(seed).shuffle(indices)
    return sorted(indices[n_heldout:]), sorted(indices[:n_heldout])


def context_key(turns: Sequence[str]) -> str:
    """The normalised text of a context (lower-cased words, turns joined): two contexts with the same
    key are one context, for de-duplication and for the train/held-out split."""
    return " | ".join(" ".join(words(t)) for t in turns)


def split_by_text(
    keys: Sequence[str], heldout_fraction: float, seed: int, what: str = "contexts"
) -> tuple[list[int], list[int]]:
    """Indices of (train, held-out) items split by their normalised texts ``keys`` (one key per item).

    Distinct keys are shuffled and split (:func:`split_indices`); every item goes to the side of its key,
    so no text is on both sides, however often it repeats.
    """
    distinct = list(dict.fromkeys(keys))
    _, heldout_keys = split_indices(len(distinct), heldout_fraction, seed, what=what)
    heldout = {distinct[i] for i in heldout_keys}
    return [i for i, k in enumerate(keys) if k not in heldout], [i for i, k in enumerate(keys) if k in heldout]


def split_dialogues(heldout_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of (train, held-out) corpus dialogues, split by the text of their opening context.

    Dialogues that open the same way (``"Hi"``, ``"hi!"``) land on one side, so no held-out prompt is
    ever a training prompt and the policy never pre-trains on a dialogue that opens like a held-out one.
    """
    keys = [context_key(d[:1]) for d in load_dialogues()]
    return split_by_text(keys, heldout_fraction, seed, what="corpus openings")


def contexts_of(dialogue: tuple[str, ...], dialogue_id: str = "") -> list[DialogueContext]:
    """Every context of one dialogue: cut before each bot turn."""
    return [
        DialogueContext(
            turns=dialogue[:k], continuation=dialogue[k], rest=tuple(dialogue[k + 1 :]), dialogue_id=dialogue_id
        )
        for k in range(1, len(dialogue), 2)
    ]


def unique_contexts(contexts: Sequence[DialogueContext]) -> list[DialogueContext]:
    """``contexts`` without repeats by normalised text (:func:`context_key`), first one kept."""
    seen: dict[str, DialogueContext] = {}
    for context in contexts:
        seen.setdefault(context_key(context.turns), context)
    return list(seen.values())


def corpus_contexts(split: str = "all", heldout_fraction: float = 0.1, seed: int = 0) -> list[DialogueContext]:
    """Distinct dialogue contexts from the corpus: ``split`` is ``"all"``, ``"train"`` or ``"heldout"``.

    Only the first context of each dialogue is used, so every context starts a conversation and the
    multi-turn user simulator can follow the real dialogue from there. Contexts are de-duplicated by
    normalised text, and the split is :func:`split_dialogues`: the two sides share no text.
    """
    dialogues, ids = load_dialogues(), dialogue_ids()
    chosen = split_side(split, heldout_fraction, seed)
    return unique_contexts([contexts_of(dialogues[i], ids[i])[0] for i in chosen])


def split_side(split: str, heldout_fraction: float = 0.1, seed: int = 0) -> Sequence[int]:
    """Indices of the corpus dialogues on ``split``'s side (``"all"``, ``"train"`` or ``"heldout"``) of
    :func:`split_dialogues`."""
    if split == "all":
        return range(len(load_dialogues()))
    if split in ("train", "heldout"):
        return split_dialogues(heldout_fraction, seed)[0 if split == "train" else 1]
    raise ValueError(f"split must be 'all', 'train' or 'heldout', got {split!r}")


def bot_turns() -> list[str]:
    """Every bot turn of the corpus, deduplicated in first-seen order: the pool of candidate replies."""
    seen: dict[str, None] = {}
    for d in load_dialogues():
        for t in d[1::2]:
            seen.setdefault(t, None)
    return list(seen)


def cap_repeats(items: Sequence, max_repeats: int) -> list:
    """``items`` in order, each distinct one kept at most ``max_repeats`` times (0: all kept)."""
    if max_repeats < 0:
        raise ValueError(f"max_repeats must be 0 (no cap) or more, got {max_repeats}")
    seen: Counter = Counter()
    out = []
    for item in items:
        seen[item] += 1
        if not max_repeats or seen[item] <= max_repeats:
            out.append(item)
    return out


def pretraining_extra(alice: bool = False) -> list[tuple[str, ...]]:
    """Pretraining dialogues from beyond the corpus: ALICE's question-answer pairs (:mod:`rlhf.data.alice`)
    when ``alice``, none of them sharing a turn's text with any corpus dialogue, so none with a held-out context."""
    return list(alice_dialogues(corpus_turn_keys())) if alice else []


def pretraining_dialogues(
    heldout_fraction: float = 0.1, seed: int = 0, max_repeats: int = 0, alice: bool = False
) -> list[tuple[str, ...]]:
    """What the default policy pretrains on: the corpus dialogues on the training side of
    :func:`split_dialogues` (each at most ``max_repeats`` times, 0: as often as the corpus has it), then
    :func:`pretraining_extra`."""
    dialogues = load_dialogues()
    train = cap_repeats([dialogues[i] for i in split_dialogues(heldout_fraction, seed)[0]], max_repeats)
    return train + pretraining_extra(alice)
