"""Prompt sources: where the environments, PPO and evaluation get the contexts the bot replies to.

A source is the chatterbot corpus (the default), a list of prompts, a ``.txt`` or ``.jsonl`` file, or
a Hugging Face dataset with a ``prompt`` column. Every source becomes a list of
:class:`~rlhf.data.corpus.DialogueContext` and is split the same way: a seeded shuffle holds out
``heldout_fraction`` of the distinct prompts, after repeats (by normalised text,
:func:`rlhf.data.corpus.context_key`) are dropped, so no held-out prompt is also a training prompt (the corpus
splits its dialogues by their opening, see :func:`rlhf.data.corpus.split_dialogues`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlhf.data.chat import clean_turn
from rlhf.data.corpus import DialogueContext, context_key, corpus_contexts, split_by_text, unique_contexts

SPLITS = ("all", "train", "heldout")
CORPUS = "corpus"


def load_prompts(
    source: Any = None, split: str = "train", heldout_fraction: float = 0.1, seed: int = 0
) -> list[DialogueContext]:
    """Contexts from ``source``, restricted to ``split`` (``"all"``, ``"train"`` or ``"heldout"``).

    ``source`` is one of:

    * ``None`` or ``"corpus"``: the first context of each chatterbot-corpus English dialogue;
    * a list of prompts, each a string (one user turn), a list of turns (user first, ending on a user
      turn) or a :class:`~rlhf.data.corpus.DialogueContext`;
    * a ``.txt`` file (one prompt per line, blank lines skipped) or a ``.jsonl`` file (one object per
      line with ``"prompt": str`` or ``"turns": [str, ...]``, optionally ``"continuation": str``);
    * a Hugging Face dataset name or local folder/data file, read with ``datasets.load_dataset``,
      with a ``prompt`` column of strings or turn lists (its ``train`` split, or its only split).

    Raises ``ValueError`` naming the file and line (or list item, or dataset row) of a bad prompt.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if source is None or (isinstance(source, str) and source == CORPUS):
        return corpus_contexts(split, heldout_fraction, seed)
    if isinstance(source, (str, Path)):
        contexts = _from_path_or_dataset(source)
    elif isinstance(source, Sequence):
        contexts = [_as_context(item, f"prompts[{i}]") for i, item in enumerate(source)]
    else:
        raise TypeError(
            f"prompts must be None, 'corpus', a list, a .txt/.jsonl path or a dataset name; got {type(source).__name__}"
        )
    if not contexts:
        raise ValueError(f"no prompts found in {_describe(source)}")
    return _split(contexts, split, heldout_fraction, seed, source)


def _split(contexts: list[DialogueContext], split: str, heldout_fraction: float, seed: int, source: Any):
    """The distinct contexts (by normalised text) of ``split``: repeats are dropped before the split, so the
    train and held-out sides never share a prompt."""
    contexts = unique_contexts(contexts)
    if split == "all":
        return contexts
    if len(contexts) < 2:
        raise ValueError(
            f"{_describe(source)} holds {len(contexts)} distinct prompt (repeats by text count once), too few to "
            "split into train and held-out; add prompts or pass split='all'"
        )
    try:
        train, heldout = split_by_text([context_key(c.turns) for c in contexts], heldout_fraction, seed, "prompts")
    except ValueError as exc:
        raise ValueError(f"{_describe(source)}: {exc}") from None
    return [contexts[i] for i in (train if split == "train" else heldout)]


def _describe(source: Any) -> str:
    return str(source) if isinstance(source, (str, Path)) else f"a {type(source).__name__} of prompts"


def _as_context(item: Any, where: str, continuation: str = "", dialogue_id: str = "") -> DialogueContext:
    """One prompt as a context; ``where`` names it in errors (``file.jsonl:3``, ``prompts[2]``)."""
    if isinstance(item, DialogueContext):
        return item
    if isinstance(item, str):
        turns = (clean_turn(item),)
    elif isinstance(item, Sequence) and all(isinstance(t, str) for t in item):
        turns = tuple(clean_turn(t) for t in item)
    else:
        raise ValueError(f"{where}: a prompt must be a string or a list of strings, got {type(item).__name__}")
    if not turns or not all(turns):
        raise ValueError(f"{where}: empty prompt or empty turn in {item!r}")
    if len(turns) % 2 != 1:
        raise ValueError(f"{where}: turns must alternate user/bot and end on a user turn; got {len(turns)} turns")
    return DialogueContext(turns=turns, continuation=clean_turn(continuation), dialogue_id=dialogue_id or where)


def _from_path_or_dataset(source: str | Path) -> list[DialogueContext]:
    path = Path(source)
    if path.suffix == ".txt":
        lines = _read_lines(path)
        return [_as_context(line, f"{path}:{n}") for n, line in lines if line.strip()]
    if path.suffix == ".jsonl":
        return [_jsonl_context(line, f"{path}:{n}") for n, line in _read_lines(path) if line.strip()]
    return _from_dataset(source)


def _read_lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def _jsonl_context(line: str, where: str) -> DialogueContext:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict) or ("prompt" not in row and "turns" not in row):
        raise ValueError(f'{where}: expected an object with "prompt" or "turns", got {line[:60]!r}')
    continuation = row.get("continuation") or ""
    if not isinstance(continuation, str):
        raise ValueError(f'{where}: "continuation" must be a string, got {type(continuation).__name__}')
    return _as_context(row["turns"] if "turns" in row else row["prompt"], where, continuation)


def _from_dataset(source: str | Path) -> list[DialogueContext]:
    import datasets

    path = Path(source)
    try:
        if path.is_dir() and (path / "dataset_info.json").is_file():
            data = datasets.load_from_disk(str(path))
        elif path.is_file() and path.suffix.lstrip(".") in ("csv", "json", "parquet"):
            data = datasets.load_dataset(path.suffix.lstrip("."), data_files=str(path))
        else:
            data = datasets.load_dataset(str(source))
    except (FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise FileNotFoundError(
            f"prompts {str(source)!r}: not a .txt/.jsonl file, a local dataset or a dataset name that loads ({exc})"
        ) from exc
    if isinstance(data, datasets.DatasetDict):
        if "train" in data:
            data = data["train"]
        elif len(data) == 1:
            data = next(iter(data.values()))
        else:
            raise ValueError(f"dataset {str(source)!r} has no 'train' split but several others: {list(data)}")
    if "prompt" not in data.column_names:
        raise ValueError(f"dataset {str(source)!r} has no 'prompt' column; columns: {data.column_names}")
    return [_as_context(p, f"{source}[row {i}]") for i, p in enumerate(data["prompt"])]
