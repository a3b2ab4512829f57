"""Who says which reply is better: a synthetic labeller (a gold scorer standing in for a person) and a
terminal tool for a person.

The synthetic labeller samples several replies per corpus context from the policy, adds the corpus's
real continuation as one more candidate, scores every candidate with a gold scorer (:mod:`rlhf.rewards.gold`)
and keeps the pairs whose gold scores differ by at least ``margin``: a person would hesitate over the
rest, and a reward model learns little from coin flips. Both write :mod:`rlhf.data.preferences` records.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rlhf.data.chat import clean_turn, render_prompt
from rlhf.data.corpus import DialogueContext, bot_turns, context_key, corpus_contexts
from rlhf.data.preferences import make_preference, write_preferences
from rlhf.runs.fingerprint import artefact_fingerprint

# Bump when the labelling recipe changes, so old preference files are not reused for new code.
LABELLER_VERSION = 2  # 2: training contexts of the shared split only


def labelling_contexts(
    num_contexts: int, seed: int, heldout_fraction: float = 0.1, split_seed: int = 0, prompts: Any = None
) -> list[DialogueContext]:
    """``num_contexts`` distinct training contexts of the corpus in a seeded order.

    Only the training side of the shared split (``heldout_fraction``, ``split_seed``: the env's) is labelled,
    and, when the env reads its own ``prompts``, none of that source's held-out prompts either: evaluation
    contexts never reach the reward model.
    """
    from rlhf.data.prompts import CORPUS, load_prompts

    contexts = corpus_contexts("train", heldout_fraction, split_seed)
    if prompts is not None and prompts != CORPUS:
        held_out = {context_key(c.turns) for c in load_prompts(prompts, "heldout", heldout_fraction, split_seed)}
        contexts = [c for c in contexts if context_key(c.turns) not in held_out]
    random.Random(seed).shuffle(contexts)
    return contexts[:num_contexts]


def synthetic_file_name(**settings: Any) -> str:
    """File name keyed on every labelling setting, the policy's fingerprint among them (not its path as spelled:
    the same policy named by a relative and an absolute path reuses its labels): a changed setting labels afresh."""
    key = json.dumps({"version": LABELLER_VERSION, **settings}, sort_keys=True)
    gold = "".join(c if c.isalnum() else "-" for c in str(settings.get("gold", "gold")))
    return f"synthetic-{gold}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.jsonl"


def label_synthetic_preferences(
    policy: str,
    output_dir: str | Path = "artifacts/preferences",
    *,
    gold: str = "default",
    num_contexts: int = 512,
    samples_per_context: int = 6,
    include_continuation: bool = True,
    corpus_replies: int = 0,
    margin: float = 0.3,
    pairs_per_context: int = 4,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    split_seed: int = 0,
    prompts: Any = None,
    policy_fingerprint: str | None = None,
    device: str = "auto",
) -> Path:
    """Label synthetic preferences with a gold scorer and return the JSONL file (reused when it exists).

    Candidates per context: ``samples_per_context`` policy samples, the real continuation when
    ``include_continuation``, and ``corpus_replies`` bot turns drawn from other corpus dialogues (fluent
    replies whose words teach the reward model what the gold scorer likes, off-topic or not).
    Contexts are :func:`labelling_contexts` (the training side of the split ``heldout_fraction``/``split_seed``,
    less the held-out ``prompts`` of the env). ``policy`` is a causal-LM name or folder. Each record carries
    ``chosen_score``/``rejected_score`` (the gold scores) and ``labeller: "gold:<spec>"``.
    """
    from rlhf.models.policy import generate_replies, load_policy
    from rlhf.rewards.resolve import resolve_reward

    settings = dict(
        gold=gold,
        num_contexts=num_contexts,
        samples_per_context=samples_per_context,
        include_continuation=include_continuation,
        corpus_replies=corpus_replies,
        margin=margin,
        pairs_per_context=pairs_per_context,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        heldout_fraction=heldout_fraction,
        split_seed=split_seed,
        prompts=None if prompts is None else str(prompts),
        # the policy's identity, not its path: a rebuilt policy at the same path labels afresh, and the same
        # policy named by another path reuses its labels
        policy_fingerprint=policy_fingerprint or artefact_fingerprint(policy),
    )
    path = Path(output_dir) / synthetic_file_name(**settings)
    if path.is_file():
        print(f"reusing synthetic preferences {path}")
        return path
    scorer = resolve_reward(gold)  # fail on an unknown scorer before sampling
    started = time.time()
    contexts = labelling_contexts(num_contexts, seed, heldout_fraction, split_seed, prompts)
    model, tokenizer = load_policy(policy, device=device)
    samples = generate_replies(
        model,
        tokenizer,
        [c.turns for c in contexts],
        num_samples=samples_per_context,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
    )
    rng = random.Random(seed)
    corpus = bot_turns()
    candidates = []
    for context, replies in zip(contexts, samples, strict=True):
        pool = [*replies, context.continuation] if include_continuation else list(replies)
        pool += rng.sample(corpus, corpus_replies)
        candidates.append(list(dict.fromkeys(r for r in map(clean_turn, pool) if r)))  # distinct, non-empty
    flat_contexts = [c.turns for c, pool in zip(contexts, candidates, strict=True) for _ in pool]
    scores = iter(scorer(flat_contexts, [r for pool in candidates for r in pool]).tolist())

    records = []
    for context, pool in zip(contexts, candidates, strict=True):
        scored = [(reply, next(scores)) for reply in pool]
        pairs = [(a, b) for a in scored for b in scored if a[1] > b[1] and a[1] - b[1] >= margin]
        for (chosen, s_chosen), (rejected, s_rejected) in disjoint_pairs(pairs, pairs_per_context, rng):
            records.append(
                make_preference(
                    context.turns,
                    chosen,
                    rejected,
                    chosen_score=round(s_chosen, 6),
                    rejected_score=round(s_rejected, 6),
                    labeller=f"gold:{gold}",
                )
            )
    write_preferences(records, path)
    print(
        f"labelled {len(records)} pairs from {len(contexts)} contexts x {samples_per_context} samples "
        f"(gold {gold!r}, margin {margin}) in {time.time() - started:.0f}s: {path}"
    )
    return path


def disjoint_pairs(pairs: Sequence[tuple], limit: int, rng: random.Random) -> list[tuple]:
    """Up to ``limit`` of ``pairs`` in a seeded random order, no reply in two of them: one good reply
    paired with every poor one would teach the same text many times over."""
    order = list(pairs)
    rng.shuffle(order)
    used: set[str] = set()
    picked = []
    for a, b in order:
        if len(picked) == limit:
            break
        if a[0] not in used and b[0] not in used:
            picked.append((a, b))
            used.update((a[0], b[0]))
    return picked


@dataclass
class HumanLabelStats:
    """What one labelling session did."""

    shown: int = 0
    labelled: int = 0
    skipped: int = 0
    quit: bool = False


def sample_reply_pairs(
    policy: str, contexts: Sequence[Sequence[str]], seed: int = 0, tries: int = 4, device: str = "auto", **sampling
) -> list[tuple[list[str], str, str]]:
    """(context, reply a, reply b) with two different policy replies per context; contexts where ``tries``
    samples never differ are left out."""
    from rlhf.models.policy import generate_replies, load_policy

    model, tokenizer = load_policy(policy, device=device)
    samples = generate_replies(model, tokenizer, contexts, num_samples=tries, seed=seed, **sampling)
    out = []
    for context, replies in zip(contexts, samples, strict=True):
        distinct = list(dict.fromkeys(r for r in replies if r))
        if len(distinct) >= 2:
            out.append((list(context), distinct[0], distinct[1]))
    return out


def label_by_hand(
    items: Iterable[tuple[Sequence[str], str, str]],
    output: str | Path,
    input_stream: IO[str] | None = None,
    output_stream: IO[str] | None = None,
) -> HumanLabelStats:
    """Show each context and two replies, ask which is better (a/b/s to skip/q to quit) and append the
    answer to the JSONL ``output`` at once, flushed, so quitting or a crash loses nothing.

    Items whose prompt and two replies are already in ``output`` are not asked again, so a session
    resumes where the last one stopped. End of input counts as quit.
    """
    stdin = input_stream or sys.stdin
    stdout = output_stream or sys.stdout
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    done = answered_pairs(output, stdout)
    stats = HumanLabelStats()
    _end_with_newline(output)
    with output.open("a", encoding="utf-8") as f:
        for context, a, b in items:
            prompt = render_prompt([clean_turn(t) for t in context])
            if (prompt, *sorted((clean_turn(a), clean_turn(b)))) in done:
                continue
            stats.shown += 1
            stdout.write(f"\n[{stats.shown}] {prompt}\n  a) {a}\n  b) {b}\n")
            while True:
                stdout.write("Which reply is better? [a/b/s(kip)/q(uit)]: ")
                stdout.flush()
                try:
                    answer = stdin.readline()
                except KeyboardInterrupt:  # Ctrl-C: every answer so far is on disk already
                    answer = ""
                    stdout.write("\n")
                if not answer:  # end of input
                    answer = "q"
                answer = ANSWERS.get(answer.strip().lower())
                if answer:
                    break
                stdout.write("please answer a, b, s (skip) or q (quit)\n")
            if answer == "q":
                stats.quit = True
                break
            if answer == "s":
                stats.skipped += 1
                continue
            chosen, rejected = (a, b) if answer == "a" else (b, a)
            record = make_preference(context, chosen, rejected, labeller="human")
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            stats.labelled += 1
    stdout.write(f"\n{stats.labelled} labelled, {stats.skipped} skipped; answers in {output}\n")
    return stats


# Only these answers count: a word that merely starts with a letter ("banana", "question") is asked again.
ANSWERS = {"a": "a", "b": "b", "s": "s", "skip": "s", "q": "q", "quit": "q"}


def answered_pairs(output: Path, warnings: IO[str]) -> set[tuple[str, ...]]:
    """(prompt, *sorted replies) of every answer in ``output``; a damaged line is skipped and named."""
    done: set[tuple[str, ...]] = set()
    if not output.is_file():
        return done
    for number, line in enumerate(output.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            done.add((row["prompt"], *sorted((row["chosen"], row["rejected"]))))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            warnings.write(f"skipping damaged line {output}:{number} ({type(exc).__name__}: {exc})\n")
    return done


def _end_with_newline(path: Path) -> None:
    """A truncated last line (a killed session) gets its line break, so the next answer starts a line of its own."""
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, 2)
            last = f.read(1)
        if last != b"\n":
            with path.open("ab") as f:
                f.write(b"\n")


def human_session(
    policy: str,
    output: str | Path,
    count: int = 20,
    seed: int = 0,
    max_new_tokens: int = 24,
    device: str = "auto",
    input_stream: IO[str] | None = None,
    output_stream: IO[str] | None = None,
) -> HumanLabelStats:
    """Label by hand two policy replies to each of the first ``count`` training corpus contexts (the labels
    train a reward model, so they never come from the held-out contexts evaluation uses)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive whole number of contexts to label, got {count!r}")
    contexts = [c.turns for c in corpus_contexts("train", seed=seed)[:count]]
    items = sample_reply_pairs(policy, contexts, seed=seed, device=device, max_new_tokens=max_new_tokens)
    return label_by_hand(items, output, input_stream, output_stream)
