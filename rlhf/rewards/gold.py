"""Gold scorers: rule-based judges that stand in for a person.

They label synthetic preferences and serve as environment rewards, so a run can measure the gold
reward beside the learned one (the over-optimisation view). Each scores a reply in its context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from rlhf.data.chat import words
from rlhf.rewards.base import Context, RewardFunction, check_scores

_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with about as is are was were be been am i you he she it we "
    "they me my your his her its our their this that these those what which who whom do does did have has had "
    "not no so than too very can will just don't i'm it's you're".split()
)


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class PerReplyScorer(RewardFunction):
    """A gold scorer computed pair by pair from a plain function."""

    def __init__(self, name: str, fn: Callable[[Context, str], float]) -> None:
        self.name = name
        self.fn = fn

    def score(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        return np.array([self.fn(c, r) for c, r in zip(contexts, replies, strict=True)], dtype=np.float64)


def sentiment(context: Context, reply: str) -> float:
    """VADER compound sentiment of the reply, in [-1, 1]: the classic "make the bot positive" task."""
    return float(_vader().polarity_scores(reply)["compound"])


def relevance(context: Context, reply: str) -> float:
    """Share of the reply's content words that also appear in the last user turn (0 to 1)."""
    asked = {w for w in words(context[-1]) if w not in _STOPWORDS} if context else set()
    said = [w for w in words(reply) if w not in _STOPWORDS]
    if not said or not asked:
        return 0.0
    return sum(w in asked for w in said) / len(said)


def length_band(context: Context, reply: str, low: int = 3, high: int = 20) -> float:
    """1 for a reply of ``low``..``high`` words, falling linearly to 0 for an empty or double-length one."""
    n = len(words(reply))
    if low <= n <= high:
        return 1.0
    if n < low:
        return n / low
    return max(0.0, 1.0 - (n - high) / high)


def no_repetition(context: Context, reply: str) -> float:
    """Distinct words over words in the reply: 1 for no repeats, near 0 for a word said over and over."""
    ws = words(reply)
    return len(set(ws)) / len(ws) if ws else 0.0


def contains_thanks(context: Context, reply: str) -> float:
    """1 when the reply says thanks (or thank you), else 0: an easy reward for smoke tests."""
    ws = set(words(reply))
    return float("thanks" in ws or "thank" in ws)


class WeightedSum(RewardFunction):
    """Several scorers combined with weights; :meth:`score_parts` reports each part."""

    def __init__(self, parts: dict[str, tuple[RewardFunction, float]], name: str = "weighted") -> None:
        if not parts:
            raise ValueError("a weighted sum needs at least one part")
        self.parts = parts
        self.name = name

    def score_parts(self, contexts: Sequence[Context], replies: Sequence[str]) -> dict[str, np.ndarray]:
        return {key: scorer.score(contexts, replies) for key, (scorer, _) in self.parts.items()}

    def score(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        return self._total(self.score_parts(contexts, replies))

    def score_with_parts(
        self, contexts: Sequence[Context], replies: Sequence[str]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if len(contexts) != len(replies):
            raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
        parts = self.score_parts(contexts, replies)
        return check_scores(self, self._total(parts), replies), parts

    def _total(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        return sum(weight * parts[key] for key, (_, weight) in self.parts.items())


_BASIC: dict[str, Callable[[Context, str], float]] = {
    "sentiment": sentiment,
    "relevance": relevance,
    "length": length_band,
    "no_repetition": no_repetition,
    "thanks": contains_thanks,
}

# Named combinations; "quality" is the dialogue-quality judge, "default" the toolkit's gold reward.
_COMBINED: dict[str, dict[str, float]] = {
    "quality": {"relevance": 0.4, "length": 0.3, "no_repetition": 0.3},
    "default": {"sentiment": 0.6, "relevance": 0.15, "length": 0.15, "no_repetition": 0.1},
}

GOLD_SCORERS = sorted([*_BASIC, *_COMBINED])


def gold_scorer(spec: str) -> RewardFunction:
    """A gold scorer by name: one of :data:`GOLD_SCORERS`, or a weighted mix ``"sentiment:0.7,quality:0.3"``
    (``"a+b"`` weighs parts equally). Raises ``KeyError`` naming an unknown part."""
    spec = spec.strip()
    if spec in _BASIC:
        return PerReplyScorer(spec, _BASIC[spec])
    if spec in _COMBINED:
        weights = _COMBINED[spec]
    else:
        weights = {}
        for item in re.split(r"[,+]", spec):
            key, _, weight = item.strip().partition(":")
            weights[key.strip()] = float(weight) if weight else 1.0
        if len(weights) == 1 and next(iter(weights)) not in _BASIC and next(iter(weights)) not in _COMBINED:
            raise KeyError(spec)
    parts = {}
    for key, weight in weights.items():
        if key not in _BASIC and key not in _COMBINED:
            raise KeyError(f"unknown gold scorer {key!r}; known: {', '.join(GOLD_SCORERS)}")
        parts[key] = (gold_scorer(key), weight)
    return WeightedSum(parts, name=spec)
