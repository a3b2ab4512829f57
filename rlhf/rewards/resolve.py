"""One reward from whatever a user passes: a reward object, a callable, a gold scorer name or a reward-model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlhf.rewards.base import CallableReward, RewardFunction
from rlhf.rewards.gold import GOLD_SCORERS, gold_scorer
from rlhf.rewards.reward_model import RewardModelScorer


def resolve_reward(spec: Any) -> RewardFunction:
    """A reward from what a user passes: a :class:`RewardFunction`, a callable, a gold scorer name
    (see :data:`rlhf.rewards.GOLD_SCORERS`, ``"a+b"`` or ``"a:0.7,b:0.3"`` to combine), or a reward-model folder."""
    if isinstance(spec, RewardFunction):
        return spec
    if callable(spec):
        return CallableReward(spec)
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if Path(text).exists():
            return RewardModelScorer(text)
        try:
            return gold_scorer(text)
        except KeyError:
            raise ValueError(
                f"unknown reward {text!r}: not a reward-model folder (no such path) and not a gold scorer "
                f"({', '.join(sorted(GOLD_SCORERS))})"
            ) from None
    raise TypeError(f"cannot make a reward from {type(spec).__name__}: pass a callable, a scorer name or a path")
