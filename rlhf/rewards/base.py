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


class RewardError(ValueError, TypeError):
    """A reward function that raised or returned something other than one finite number per pair.

    Both a ``ValueError`` and a ``TypeError``: callers written against the earlier errors (a bad value, a
    result of the wrong type) keep catching it.
    """


def describe_pair(contexts: Sequence[Context], replies: Sequence[str], i: int) -> str:
    """``pair i (context '…', reply '…')``: how errors name the pair a reward failed on."""
    context = " | ".join(contexts[i]) if not isinstance(contexts[i], str) else contexts[i]
    return f"pair {i} (context {context[-80:]!r}, reply {replies[i][:80]!r})"


def score_checked(reward: RewardFunction, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
    """Score through ``reward`` and refuse a result of the wrong shape, type or with NaN/inf.

    A reward that raises is re-raised as :class:`RewardError` naming the reward and the pair (the batch's
    pairs when there are several: a batched function does not say which one it failed on).
    """
    if len(contexts) != len(replies):
        raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
    try:
        raw = reward.score(contexts, replies)
    except RewardError:
        raise
    except Exception as exc:
        where = describe_pair(contexts, replies, 0) if len(replies) == 1 else f"a batch of {len(replies)} pairs"
        if len(replies) > 1:
            where += f", the first {describe_pair(contexts, replies, 0)}"
        raise RewardError(f"reward {reward.name!r} raised {type(exc).__name__}: {exc} on {where}") from exc
    return check_scores(reward, raw, replies, contexts)


def check_scores(
    reward: RewardFunction, raw: Any, replies: Sequence[str], contexts: Sequence[Context] | None = None
) -> np.ndarray:
    """``raw`` as a float array of one finite score per reply, or an error naming ``reward`` and the pair."""

    def pair(i: int) -> str:
        return describe_pair(contexts, replies, i) if contexts is not None else f"pair {i} (reply {replies[i]!r})"

    try:
        scores = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        items = list(raw) if isinstance(raw, (list, tuple, np.ndarray)) else []
        bad = next((i for i, x in enumerate(items) if not _is_number(x)), None)
        if bad is not None and bad < len(replies):
            raise RewardError(
                f"reward {reward.name!r} returned {items[bad]!r} ({type(items[bad]).__name__}), not a number, "
                f"for {pair(bad)}"
            ) from exc
        raise RewardError(f"reward {reward.name!r} returned {type(raw).__name__}, not numbers") from exc
    if scores.shape != (len(replies),):
        raise RewardError(
            f"reward {reward.name!r} returned shape {scores.shape} for {len(replies)} pairs; expected ({len(replies)},)"
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RewardError(f"reward {reward.name!r} returned {scores[i]} for {pair(i)}")
    return scores


def _is_number(x: Any) -> bool:
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return not isinstance(x, (str, bytes))


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
        scores = []
        for i, (context, reply) in enumerate(zip(contexts, replies, strict=True)):
            try:
                value = self.fn(context, reply)
            except Exception as exc:  # a per-pair function can say exactly which pair it failed on
                where = describe_pair(contexts, replies, i)
                raise RewardError(f"reward {self.name!r} raised {type(exc).__name__}: {exc} on {where}") from exc
            if not _is_number(value) or np.ndim(value) != 0:
                where = describe_pair(contexts, replies, i)
                raise RewardError(
                    f"reward {self.name!r} returned {value!r:.60} ({type(value).__name__}), not a number, for {where}"
                )
            scores.append(float(value))
        return np.array(scores, dtype=np.float64)
