"""The reward protocol: score many (context, reply) pairs at once, return one float per pair.

Three kinds of reward implement it: a learned reward model (:class:`RewardModelScorer`), the gold
scorers of :mod:`rlhf.gold`, and any user callable (:class:`CallableReward`). Environments, the
synthetic labeller, PPO and the baselines all score through :func:`score_checked`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.chat import render_exchange

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


def position_limit(model) -> int | None:
    """The longest input ``model`` takes (its position table), or ``None`` when its config does not say."""
    return getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class RewardModelScorer(RewardFunction):
    """A learned reward model: an ``AutoModelForSequenceClassification`` folder with one output.

    Loaded once; scores batches of rendered exchanges (:func:`rlhf.chat.render_exchange`), on CUDA
    in bf16 when there is a GPU.
    """

    name = "reward_model"

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 64, max_length: int = 256):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise FileNotFoundError(f"no reward model at {self.path}: expected a folder with config.json")
        self.device = device or default_device()
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.path, dtype=dtype)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{self.path}: a reward model has one output, this one has {self.model.config.num_labels}")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        # Never longer than the model's position table (a policy-sized RM has 128 positions), nor than the
        # length it was trained at, which rlhf.reward_model saves as the tokenizer's model_max_length.
        limits = [
            max_length,
            position_limit(self.model) or 0,
            self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1e9 else 0,  # huge means unset
        ]
        self.max_length = min(n for n in limits if n)

    def score(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        import torch

        texts = [render_exchange(c, r) for c, r in zip(contexts, replies, strict=True)]
        scores = np.zeros(len(texts))
        # Batches of similar length waste little on padding; the end of a long exchange is kept, since
        # the reply is what is being scored.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self.tokenizer.truncation_side = "left"
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in rows],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                ).to(self.device)
                scores[rows] = self.model(**enc).logits[:, 0].float().cpu().numpy()
        return scores


def resolve_reward(spec: Any) -> RewardFunction:
    """A reward from what a user passes: a :class:`RewardFunction`, a callable, a gold scorer name
    (see :data:`rlhf.gold.GOLD_SCORERS`, ``"a+b"`` or ``"a:0.7,b:0.3"`` to combine), or a reward-model folder."""
    from rlhf import gold

    if isinstance(spec, RewardFunction):
        return spec
    if callable(spec):
        return CallableReward(spec)
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if Path(text).exists():
            return RewardModelScorer(text)
        try:
            return gold.gold_scorer(text)
        except KeyError:
            raise ValueError(
                f"unknown reward {text!r}: not a reward-model folder (no such path) and not a gold scorer "
                f"({', '.join(sorted(gold.GOLD_SCORERS))})"
            ) from None
    raise TypeError(f"cannot make a reward from {type(spec).__name__}: pass a callable, a scorer name or a path")
