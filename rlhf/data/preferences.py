"""Preference data: one record shape, its readers and a seeded train/held-out split.

A preference record says which of two replies to the same context is better, in the toolkit's chat
format (:mod:`rlhf.data.chat`)::

    {"prompt": "User: Hello\\nBot:", "chosen": "Hi, nice to meet you.", "rejected": "no", "context": ["Hello"]}

``prompt`` is always ``render_prompt(context)``, so ``render_exchange(context, reply)`` — what a
reward model is trained on and what :class:`rlhf.rewards.base.RewardModelScorer` scores — is
``prompt + " " + reply + "\\n"``. Extra keys (gold scores, the labeller) ride along.

Readers take JSONL, CSV and Parquet files, and Hugging Face datasets by name or local folder
(``datasets.load_dataset``), including Anthropic hh-rlhf rows whose ``chosen``/``rejected`` hold
whole ``\\n\\nHuman:``/``\\n\\nAssistant:`` transcripts. A file or dataset whose columns do not fit,
or a row that lacks a column or holds a non-text value, is an error naming the file, line and
column. Rows that fit but teach nothing are dropped and counted by reason (``docs/reward_models.md``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.data.chat import BOT, HH_HUMAN, clean_turn, parse_dialogue, render_prompt, split_hh_transcript, words
from rlhf.errors import UserError

REQUIRED_COLUMNS = ("chosen", "rejected")
PREFERENCE_COLUMNS = ("prompt", *REQUIRED_COLUMNS)

# Reasons a row is dropped (and counted) rather than refused; docs/reward_models.md lists the rules.
EMPTY_PROMPT = "empty prompt"
EMPTY_REPLY = "empty chosen or rejected"
IDENTICAL = "identical chosen and rejected"
CONTEXTS_DIFFER = "hh-rlhf transcripts with different contexts"
NOT_A_TRANSCRIPT = "hh-rlhf transcript that does not parse"


class PreferenceDataError(UserError, ValueError):
    """A preference file or dataset that cannot be read as preferences."""


@dataclass
class PreferenceStats:
    """How many rows a source held, how many were kept, and how many were dropped for which reason."""

    source: str
    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        """Count one row dropped for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def __str__(self) -> str:
        total = sum(self.dropped.values())
        why = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.dropped.items()))
        return f"{self.source}: read {self.read} rows, kept {self.kept}, dropped {total}" + (f" ({why})" if why else "")


def make_preference(context: Sequence[str], chosen: str, rejected: str, **extra: Any) -> dict[str, Any]:
    """A preference record for ``context`` (turns ending on a user turn) and two replies."""
    turns = [clean_turn(t) for t in context]
    return {
        "prompt": render_prompt(turns),
        "chosen": clean_turn(chosen),
        "rejected": clean_turn(rejected),
        "context": turns,
        **extra,
    }


def context_of_prompt(prompt: str) -> list[str]:
    """The turns of a prompt: a rendered ``User: …\\nBot:`` prompt parses back into its turns; any
    other text is read as a single user turn."""
    text = prompt.rstrip()
    cue = f"{BOT}:"
    if text.endswith(cue):
        try:
            turns = parse_dialogue(text[: -len(cue)])
        except ValueError:
            turns = []
        if turns and len(turns) % 2 == 1:
            return turns
    return [clean_turn(prompt)]


def to_preference(row: dict[str, Any], where: str) -> dict[str, Any] | str:
    """A record from one source row, or the reason (a string) the row is dropped.

    ``where`` ("file:line", "dataset row 7") prefixes errors. Raises :class:`PreferenceDataError`
    for a missing column or a value that is not text.
    """
    values = {}
    for column in PREFERENCE_COLUMNS:
        if column not in row:
            if column == "prompt":
                continue
            found = ", ".join(map(str, row)) or "none"
            raise PreferenceDataError(f"{where}: missing column {column!r} (found: {found})")
        value = row[column]
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise PreferenceDataError(f"{where}: column {column!r} must be text, got {type(value).__name__}")
        values[column] = value
    extra = {k: v for k, v in row.items() if k not in (*PREFERENCE_COLUMNS, "context")}
    if "prompt" in values:
        if not clean_turn(values["prompt"]):
            return EMPTY_PROMPT
        context = row.get("context") or context_of_prompt(values["prompt"])
        if not isinstance(context, list) or not all(isinstance(t, str) for t in context) or len(context) % 2 != 1:
            context = context_of_prompt(values["prompt"])
        chosen, rejected = values["chosen"], values["rejected"]
    elif HH_HUMAN.strip() in values["chosen"] or HH_HUMAN.strip() in values["rejected"]:
        try:
            context, chosen = split_hh_transcript(values["chosen"])
            other, rejected = split_hh_transcript(values["rejected"])
        except ValueError:
            return NOT_A_TRANSCRIPT
        if other != context:
            return CONTEXTS_DIFFER
    else:
        raise PreferenceDataError(
            f"{where}: no 'prompt' column and 'chosen' is not an hh-rlhf transcript (no 'Human:' turn); "
            "expected columns prompt, chosen, rejected"
        )
    if not context or not all(clean_turn(t) for t in context):
        return EMPTY_PROMPT
    chosen, rejected = clean_turn(chosen), clean_turn(rejected)
    if not chosen or not rejected:
        return EMPTY_REPLY
    if chosen == rejected:
        return IDENTICAL
    return make_preference(context, chosen, rejected, **extra)


def check_columns(columns: Sequence[str], source: str) -> None:
    """Refuse a table without ``chosen`` and ``rejected``, naming what is missing and what was found."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise PreferenceDataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; expected prompt (optional for hh-rlhf "
            f"transcripts), chosen, rejected; found columns: {', '.join(map(str, columns)) or 'none'}"
        )


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PreferenceDataError(
                    f"{path}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                    "save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PreferenceDataError(
                    f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(row, dict):
                raise PreferenceDataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield f"{path}:{number}", row


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        try:
            check_columns(reader.fieldnames or [], str(path))
            for row in reader:
                yield f"{path}:{reader.line_num}", row
        except UnicodeDecodeError as exc:
            raise PreferenceDataError(
                f"{path}:{reader.line_num + 1}: not UTF-8 text ({exc.reason}); save the file as UTF-8"
            ) from None


def _table_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str], source: str):
    check_columns(columns, source)
    for i, row in enumerate(rows):
        yield f"{source} row {i}", row


def _parquet_rows(path: Path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return _table_rows(table.to_pylist(), table.column_names, str(path))


def _dataset_rows(source: str, split: str):
    import datasets

    try:
        dataset = datasets.load_dataset(source, split=split)
    except (OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        where = "local folder" if Path(source).exists() else "file, folder or dataset on the hub (offline?)"
        message = f"cannot load preferences {source!r} split {split!r}: not a readable {where} ({exc})"
        raise PreferenceDataError(message) from exc
    return _table_rows(dataset, dataset.column_names, f"{source}[{split}]")


PREFERENCE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def preference_files(folder: Path, split: str) -> list[Path]:
    """The preference files of a folder for ``split``, in name order: those whose name starts with the split's
    (``train.jsonl``, ``train-round-2.jsonl``), or every one when none does (``round-1.jsonl``, ``round-2.jsonl``).
    Empty for a folder holding no preference file (a saved Hugging Face dataset)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PREFERENCE_SUFFIXES)
    if not files or (folder / "dataset_info.json").is_file() or (folder / "dataset_dict.json").is_file():
        return []
    named = [p for p in files if p.stem == split or p.stem.startswith((f"{split}-", f"{split}_", f"{split}."))]
    return named or files


def source_rows(source: str | os.PathLike, split: str = "train") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for each raw row of a JSONL/CSV/Parquet file, a folder of them (its ``split``'s files,
    :func:`preference_files`) or a Hugging Face dataset."""
    path = Path(source)
    if path.is_dir() and preference_files(path, split):
        return (row for file in preference_files(path, split) for row in source_rows(file, split))
    suffix = path.suffix.lower()
    if path.is_file() and suffix in (".jsonl", ".json"):
        return _jsonl_rows(path)
    if path.is_file() and suffix == ".csv":
        return _csv_rows(path)
    if path.is_file() and suffix == ".parquet":
        return _parquet_rows(path)
    if path.is_file():
        raise PreferenceDataError(f"{path}: unknown preference file type {suffix!r}; expected .jsonl, .csv or .parquet")
    return _dataset_rows(str(source), split)


def read_preferences(
    source: str | os.PathLike, split: str = "train", limit: int | None = None
) -> tuple[list[dict[str, Any]], PreferenceStats]:
    """Preference records from a file or dataset (its ``split``), at most ``limit`` rows read, and the counts."""
    stats = PreferenceStats(source=str(source))
    records = []
    for where, row in source_rows(source, split):
        if limit is not None and stats.read >= limit:
            break
        stats.read += 1
        record = to_preference(row, where)
        if isinstance(record, str):
            stats.drop(record)
        else:
            records.append(record)
    stats.kept = len(records)
    return records, stats


def write_preferences(records: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write records to a JSONL file atomically (written beside it, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def split_preferences(
    records: Sequence[dict[str, Any]], heldout_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out) records: a seeded shuffle of the prompts, every pair of one prompt on the same side,
    so held-out accuracy measures contexts the reward model has not seen."""
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    counts = Counter(r["prompt"] for r in records)
    prompts = sorted(counts)
    random.Random(seed).shuffle(prompts)
    target = heldout_fraction * len(records)
    heldout_prompts, n = set(), 0
    for prompt in prompts[:-1]:  # keep at least one prompt for training
        if n >= target:
            break
        heldout_prompts.add(prompt)
        n += counts[prompt]
    train = [r for r in records if r["prompt"] not in heldout_prompts]
    heldout = [r for r in records if r["prompt"] in heldout_prompts]
    return train, heldout


# Words too common to say what a turn is about; two contexts sharing any other word may share a topic.
_FUNCTION_WORDS = frozenset(
    "a about an and are can could did do does for have how i is it me my of on or that the this to was what when "
    "where which who why will with would you your".split()
)


def hh_transcript(context: Sequence[str], reply: str) -> str:
    """``context`` and ``reply`` as an Anthropic hh-rlhf transcript (``\\n\\nHuman: …\\n\\nAssistant: …``)."""
    turns = [*context, reply]
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {clean_turn(t)}" for i, t in enumerate(turns))


def answering_contexts(
    split: str = "all", heldout_fraction: float = 0.1, split_seed: int = 0, min_words: int = 3, max_words: int = 30
) -> dict[tuple[str, ...], tuple[str, str]]:
    """``{context turns: (reply, category)}`` for the corpus contexts whose real continuation answers them.

    Every context (cut before each bot turn) of the dialogues on ``split``'s side (``"all"``, ``"train"`` or
    ``"heldout"`` of :func:`rlhf.data.corpus.split_dialogues` at ``heldout_fraction``/``split_seed``, the
    environments' context split) whose continuation names something the context is about (shares a
    content word with it), has ``min_words``-``max_words`` words and no code block. Each context and each
    reply is kept once. A held-out context's reply that is also a bot turn on the training side (same
    words) is left out, so the held-out side's chosen replies are new text too.
    """
    from rlhf.data.corpus import context_key, contexts_of, dialogue_ids, load_dialogues, split_dialogues

    dialogues, ids = load_dialogues(), dialogue_ids()
    if split == "all":
        side, other = list(range(len(dialogues))), []
    elif split in ("train", "heldout"):
        train, heldout = split_dialogues(heldout_fraction, split_seed)
        side, other = (train, heldout) if split == "train" else (heldout, train)
    else:
        raise ValueError(f"split must be 'all', 'train' or 'heldout', got {split!r}")
    # Replies the other side's dialogues say: a held-out chosen reply must not be training text.
    seen_elsewhere = {context_key([t]) for i in other for t in dialogues[i][1::2]} if split == "heldout" else set()
    items: dict[tuple[str, ...], tuple[str, str]] = {}  # context -> (reply, category); first one kept
    replies_seen: set[str] = set()
    for i in side:
        for c in contexts_of(dialogues[i], ids[i]):
            if c.turns in items or c.continuation in replies_seen or context_key([c.continuation]) in seen_elsewhere:
                continue
            # Generic continuations ("Are you sure about that?") would answer the unrelated context as well,
            # and a reply in code is told from prose without reading the question: both are left out.
            about = {w for t in c.turns for w in words(t)} - _FUNCTION_WORDS
            reply = words(c.continuation)
            if min_words <= len(reply) <= max_words and "```" not in c.continuation and about & set(reply):
                items[c.turns] = (c.continuation, c.dialogue_id.split("/")[0])
                replies_seen.add(c.continuation)
    return items


def context_preferences(
    seed: int = 0,
    rounds: int = 6,
    min_words: int = 3,
    max_words: int = 30,
    split: str = "all",
    heldout_fraction: float = 0.1,
    split_seed: int = 0,
) -> list[dict[str, Any]]:
    """Preferences that only a reader of the context can get right, cut from the corpus (hh-rlhf rows).

    Every context of :func:`answering_contexts` (``split``'s side of the environments' context split) is
    paired, in each of ``rounds`` seeded rounds, with a new context of the same side from another corpus
    category that shares no content word with it, and each of the two gives the other its continuation as
    the rejected reply: chosen = the reply that answers, rejected = a fluent reply to something else. Pairs
    come as such twins, so a scorer that ignores the context ranks exactly half of them right (a
    word-overlap scorer, which reads it, ranks ~99 % right). Returns ``{"chosen": transcript,
    "rejected": transcript}`` rows.
    """
    items = answering_contexts(split, heldout_fraction, split_seed, min_words, max_words)
    topic = {turns: {w for t in turns for w in words(t)} - _FUNCTION_WORDS for turns in items}

    def unrelated(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
        return items[a][1] != items[b][1] and not topic[a] & topic[b] and frozenset((a, b)) not in paired

    rng = random.Random(seed)
    paired: set[frozenset] = set()
    rows: list[dict[str, Any]] = []
    for _ in range(rounds):
        pool = list(items)
        rng.shuffle(pool)
        while pool:
            turns = pool.pop()
            mate = next((j for j, other in enumerate(pool) if unrelated(turns, other)), None)
            if mate is None:  # nothing unrelated left to pair with this round
                continue
            other = pool.pop(mate)
            paired.add(frozenset((turns, other)))
            reply, other_reply = items[turns][0], items[other][0]
            rows.append({"chosen": hh_transcript(turns, reply), "rejected": hh_transcript(turns, other_reply)})
            rows.append({"chosen": hh_transcript(other, other_reply), "rejected": hh_transcript(other, reply)})
    return rows


def corpus_comparisons(
    split: str = "train",
    heldout_fraction: float = 0.1,
    split_seed: int = 0,
    per_context: int = 4,
    hard_fraction: float = 0.5,
    seed: int = 0,
    swaps: int = 0,
) -> list[dict[str, Any]]:
    """Cheap comparisons for preference-model pretraining (Askell et al. 2021), cut from the corpus.

    For every distinct context of the dialogues on ``split``'s side of the environments' context split
    (cut before each bot turn), ``per_context`` records whose chosen reply is the real continuation and
    whose rejected reply is another context's continuation: a ``hard_fraction`` of them from the same corpus
    category or naming a word of the context (hard to tell apart without reading it), the rest any reply.
    """
    from rlhf.data.corpus import context_key, contexts_of, dialogue_ids, load_dialogues, split_side

    dialogues, ids = load_dialogues(), dialogue_ids()
    side = split_side(split, heldout_fraction, split_seed)
    contexts: dict[str, Any] = {}
    for i in side:
        for c in contexts_of(dialogues[i], ids[i]):
            contexts.setdefault(context_key(c.turns), c)
    items = list(contexts.values())
    replies = [c.continuation for c in items]
    reply_keys = [context_key([r]) for r in replies]
    by_category: dict[str, list[int]] = {}
    by_word: dict[str, list[int]] = {}
    for j, c in enumerate(items):
        by_category.setdefault(c.dialogue_id.split("/")[0], []).append(j)
        for w in set(words(c.continuation)) - _FUNCTION_WORDS:
            by_word.setdefault(w, []).append(j)

    rng = random.Random(seed)
    records = []
    for j, c in enumerate(items):
        about = sorted({w for t in c.turns for w in words(t)} - _FUNCTION_WORDS)
        hard = by_category[c.dialogue_id.split("/")[0]] + [k for w in about for k in by_word.get(w, [])]
        for n in range(per_context):
            pool = hard if n < round(hard_fraction * per_context) and len(hard) > 1 else range(len(items))
            for _ in range(20):  # a reply other than the context's own (by text)
                k = rng.choice(pool)
                if reply_keys[k] != reply_keys[j]:
                    records.append(make_preference(c.turns, c.continuation, replies[k]))
                    break
    if swaps:
        records += word_swaps(items, swaps, rng)
    return records


def _swap_word(text: str, old: str, new: str) -> str:
    import re

    return re.sub(rf"\b{re.escape(old)}\b", new, text, flags=re.IGNORECASE)


def word_swaps(
    items: Sequence[Any], per_context: int, rng: random.Random, minimal_fraction: float = 0.5
) -> list[dict[str, Any]]:
    """Comparisons that teach matching a reply to its context rather than memorising pairs of words.

    For each context of ``items`` whose continuation names a content word of it, ``per_context`` records in
    which that word is replaced, in the context and in the chosen reply alike, by another corpus word (drawn
    from ``items``' own text). The rejected reply carries an out-of-place word too, one the context does not
    hold: a ``minimal_fraction`` of the time it is the same continuation with that other word where the
    chosen one has the context's (only the match tells the two apart), otherwise the continuation of a
    context that names no word of it, one of its content words replaced. So "the reply holds an odd word"
    is no cue: only whether it is the context's word is.
    """
    vocabulary = sorted(
        {w for c in items for t in (*c.turns, c.continuation) for w in words(t) if w.isalpha() and len(w) > 2}
        - _FUNCTION_WORDS
    )
    topics = [{w for t in c.turns for w in words(t)} - _FUNCTION_WORDS for c in items]
    records = []
    for c, about in zip(items, topics, strict=True):
        shared = sorted(about & set(words(c.continuation)))
        if not shared:
            continue
        for _ in range(per_context):
            old, new, decoy = rng.choice(shared), rng.choice(vocabulary), rng.choice(vocabulary)
            if {new, decoy} & (about | set(words(c.continuation))) or decoy == new:
                continue  # each of the two must be new to the exchange, and they must differ
            turns = [_swap_word(t, old, new) for t in c.turns]
            in_context = {w for t in turns for w in words(t)}
            if rng.random() < minimal_fraction:
                rejected = _swap_word(c.continuation, old, decoy)
            else:
                other = rng.choice(items)
                named = set(words(other.continuation)) - _FUNCTION_WORDS
                replaced = sorted(w for w in named if w.isalpha() and len(w) > 2)
                if not replaced or set(words(other.continuation)) & (about | {new}):
                    continue
                rejected = _swap_word(other.continuation, rng.choice(replaced), decoy)
                if set(words(rejected)) & in_context - _FUNCTION_WORDS:
                    continue
            records.append(make_preference(turns, _swap_word(c.continuation, old, new), rejected))
    return records
