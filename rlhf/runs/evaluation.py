"""One evaluation for every algorithm: the same held-out contexts, rewards and metric names.

PPO, tabular Q-learning and DQN all reply to the held-out contexts and pass the replies here, so
their numbers sit in one table. Metric names (``EVAL_METRICS``) are shared by wandb, the local run
records and the comparison report; ``eval/kl`` is logged only where a reference policy exists (PPO).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from rlhf.data.chat import words
from rlhf.rewards.base import Context, RewardFunction, score_checked

ENV_REWARD = "eval/env_reward"
GOLD_REWARD = "eval/gold_reward"
KL = "eval/kl"
REPLY_LENGTH = "eval/reply_length"
DISTINCT_1 = "eval/distinct_1"
DISTINCT_2 = "eval/distinct_2"
WORD_RATE = "eval/word_rate"
SAMPLES = "samples"  # environment interactions (replies scored) so far: the x axis of every comparison
EVAL_METRICS = (ENV_REWARD, GOLD_REWARD, KL, REPLY_LENGTH, DISTINCT_1, DISTINCT_2, WORD_RATE)


def held_out_contexts(prompts: Any = None, n: int | None = 64, heldout_fraction: float = 0.1, seed: int = 0):
    """The first ``n`` held-out contexts of a prompt source (default: the corpus), the same for every run."""
    from rlhf.data.prompts import load_prompts

    contexts = load_prompts(prompts, split="heldout", heldout_fraction=heldout_fraction, seed=seed)
    return contexts if n is None else contexts[:n]


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all n-grams in ``replies`` (0 when there are none): a diversity measure."""
    grams = [tuple(ws[i : i + n]) for ws in map(words, replies) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@lru_cache(maxsize=4)
def corpus_vocabulary(heldout_fraction: float = 0.1, seed: int = 0, alice: bool = False) -> frozenset[str]:
    """Every word (:func:`rlhf.data.chat.words`) of the dialogues the default policy pretrains on
    (:func:`rlhf.data.corpus.pretraining_dialogues`)."""
    from rlhf.data.corpus import pretraining_dialogues

    return frozenset(w for d in pretraining_dialogues(heldout_fraction, seed, alice=alice) for t in d for w in words(t))


def word_rate(replies: Sequence[str], vocabulary: Collection[str]) -> float:
    """Share of all reply words found in ``vocabulary`` (0 when there are none): are the replies made of words?

    Pooled over words, not averaged over replies, so a one-word reply weighs no more than one word of a
    long one. A BPE policy that strings sub-words together ("iltten 19bert") scores low.
    """
    found = [w in vocabulary for r in replies for w in words(r)]
    return sum(found) / len(found) if found else 0.0


def evaluate_replies(
    contexts: Sequence[Context],
    replies: Sequence[str],
    reward: RewardFunction,
    gold: RewardFunction | None = None,
    vocabulary: Collection[str] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics of ``replies`` to ``contexts`` and one sample row per pair (context, reply, rewards).

    ``eval/word_rate`` counts words found in ``vocabulary`` (default: every word of the default policy's
    pretraining text, chatterbot-corpus's training side and ALICE's pairs: :func:`corpus_vocabulary`).
    """
    env_scores = score_checked(reward, contexts, replies)
    gold_scores = score_checked(gold, contexts, replies) if gold is not None else None
    metrics = {
        ENV_REWARD: float(env_scores.mean()),
        REPLY_LENGTH: float(np.mean([len(words(r)) for r in replies])),
        DISTINCT_1: distinct_n(replies, 1),
        DISTINCT_2: distinct_n(replies, 2),
        WORD_RATE: word_rate(replies, corpus_vocabulary(alice=True) if vocabulary is None else vocabulary),
    }
    if gold_scores is not None:
        metrics[GOLD_REWARD] = float(gold_scores.mean())
    rows = [
        {
            "context": " | ".join(context),
            "reply": reply,
            "env_reward": float(env_scores[i]),
            **({"gold_reward": float(gold_scores[i])} if gold_scores is not None else {}),
        }
        for i, (context, reply) in enumerate(zip(contexts, replies, strict=True))
    ]
    return metrics, rows
