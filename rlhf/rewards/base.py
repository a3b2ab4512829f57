"""The reward protocol: score many (context, reply) pairs at once, return one float per pair.

Three kinds of reward implement it: a learned reward model (:class:`RewardModelScorer`), the gold
scorers of :mod:`rlhf.rewards.gold`, and any user callable (:class:`CallableReward`). Environments, the
synthetic labeller, PPO and the baselines all score through :func:`score_checked`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Context = Sequence[str]


class RewardFunction:
    """Base of every reward: subclasses implement :meth:`score`."""

    name: str = "reward"

    def score(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        """One reward per (context, reply) pair, as a float array of shape ``(len(replies),)``."""
        raise NotImplementedError

    def score_parts(self, contexts: Sequence[Context], replies: Sequence[str]) -> dict[str, np.ndarray]:
        """The reward's named parts (a composite reward has several), each of shape ``(n,)``."""
        return {self.name: self.score(contexts, replies)}

    def score_with_parts(
        self, contexts: Sequence[Context], replies: Sequence[str]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The checked reward and its parts, each part scored once (a composite reward overrides this)."""
        scores = score_checked(self, contexts, replies)
        return scores, {self.name: scores}

    def __call__(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        return score_checked(self, contexts, replies)


def score_checked(reward: RewardFunction, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
    """Score through ``reward`` and refuse a result of the wrong shape, type or with NaN/inf."""
    if len(contexts) != len(replies):
        raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
    return check_scores(reward, reward.score(contexts, replies), replies)


def check_scores(reward: RewardFunction, raw: Any, replies: Sequence[str]) -> np.ndarray:
    """``raw`` as a float array of one finite score per reply, or an error naming ``reward`` and the pair."""
    try:
        scores = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"reward {reward.name!r} returned {type(raw).__name__}, not numbers") from exc
    if scores.shape != (len(replies),):
        raise ValueError(
            f"reward {reward.name!r} returned shape {scores.shape} for {len(replies)} pairs; expected ({len(replies)},)"
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"reward {reward.name!r} returned {scores[i]} for pair {i} (reply {replies[i]!r})")
    return scores


class CallableReward(RewardFunction):
    """A user function as a reward.

    ``batched=True``: ``fn(contexts, replies) -> array of n floats``. ``batched=False``:
    ``fn(context, reply) -> float``, called once per pair.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, batched: bool = True) -> None:
        if not callable(fn):
            raise TypeError(f"reward must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.batched = batched
        self.name = name or getattr(fn, "__name__", "callable")

    def score(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        if self.batched:
            return self.fn(list(contexts), list(replies))
        return np.array([float(self.fn(c, r)) for c, r in zip(contexts, replies, strict=True)])
