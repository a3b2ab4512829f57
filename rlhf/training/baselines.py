"""What the select-env baselines (tabular Q-learning and DQN) share.

The config of the select env and of the evaluation, the held-out evaluator that puts a baseline's
numbers beside PPO's, and the "skip when the finished run record exists" check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium

from rlhf.rewards.base import RewardFunction
from rlhf.rewards.resolve import resolve_reward
from rlhf.runs.evaluation import evaluate_replies, held_out_contexts
from rlhf.runs.fingerprint import stage_fingerprint
from rlhf.runs.records import RunSettings, finished_run, run_folder

SELECT_ENV_ID = "rlhf/DialogueSelect-v0"
SELECT_INDEX_ENV_ID = "rlhf/DialogueSelectIndex-v0"


# -- shared by the select-env baselines --------------------------------------------------------------


@dataclass
class SelectEnvConfig(RunSettings):
    """The select env both baselines train on and the held-out evaluation they share with PPO."""

    reward: str = "default"  # a gold scorer name or a reward-model folder
    reward_model: str | None = None  # a reward-model folder; replaces ``reward`` when set
    gold: str | None = "default"  # the gold scorer reported beside the reward
    prompts: str | None = None  # None: the chatterbot corpus
    heldout_fraction: float = 0.1
    num_candidates: int = 8
    num_contexts: int | None = None  # train on the first N prompts only (None: all)
    max_turns: int = 1
    eval_every: int = 1000  # env steps between evaluations
    eval_contexts: int = 64  # the first N held-out contexts, as PPO
    seed: int = 0


@dataclass
class BaselineResult:
    """A finished baseline run: its record folder, final metrics and wall time."""

    run_dir: str
    metrics: dict[str, float]
    seconds: float
    skipped: bool


def build_rewards(config: SelectEnvConfig) -> tuple[RewardFunction, RewardFunction | None]:
    """The learned (or named) reward and the gold scorer, built once and shared by the train and held-out envs."""
    reward = resolve_reward(config.reward_model or config.reward)
    return reward, (resolve_reward(config.gold) if config.gold else None)


def make_select_env(config: SelectEnvConfig, env_id: str, split: str, rewards, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make(env_id)`` on ``split`` with the config's prompts, seed and K, sharing ``rewards``."""
    from rlhf.envs import register_envs

    register_envs()
    reward, gold = rewards
    return gymnasium.make(
        env_id,
        reward=reward,
        gold=gold,
        prompts=config.prompts,
        split=split,
        heldout_fraction=config.heldout_fraction,
        seed=config.seed,
        num_candidates=config.num_candidates,
        max_turns=config.max_turns,
        **kwargs,
    )


class HeldOutEvaluation:
    """PPO's evaluation for a select-env agent: reply to the same held-out contexts by picking a candidate.

    ``act(observation, candidates) -> action`` sees the held-out env's observation of each context and its
    candidate replies; the replies are scored by :func:`rlhf.runs.evaluation.evaluate_replies` with the env's
    reward and gold scorer, so the numbers sit beside PPO's.
    """

    def __init__(self, env: gymnasium.Env, config: SelectEnvConfig) -> None:
        self.env = env
        self.contexts = held_out_contexts(config.prompts, config.eval_contexts, config.heldout_fraction, config.seed)
        first_index: dict[Any, int] = {}
        for i, context in enumerate(env.unwrapped.contexts):
            first_index.setdefault(context, i)
        missing = [c.turns for c in self.contexts if c not in first_index]
        if missing:
            raise ValueError(f"{len(missing)} held-out contexts are not in the held-out select env, e.g. {missing[0]}")
        self.indices = [first_index[c] for c in self.contexts]

    def __call__(self, act: Callable[[Any, list[str]], int]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        replies = []
        for index in self.indices:
            observation, _ = self.env.reset(options={"context_index": index})
            candidates = self.env.unwrapped.candidates
            replies.append(candidates[int(act(observation, candidates))])
        select = self.env.unwrapped
        return evaluate_replies([c.turns for c in self.contexts], replies, select.reward_fn, select.gold_fn)


def run_fingerprint(config: SelectEnvConfig, algo: str, env_id: str) -> dict[str, Any]:
    """What makes a baseline run: its config and the reward model and prompt files it names (see
    :mod:`rlhf.runs.fingerprint`)."""
    return stage_fingerprint(config, algo=algo, env=env_id)


def finished_result(config: RunSettings, algo: str, fingerprint: dict[str, Any] | None = None) -> BaselineResult | None:
    """The result of the finished run record this config would write, or ``None`` when there is none yet
    (or when it was made by other settings or inputs than ``fingerprint``: see :func:`rlhf.runs.records.finished_run`).

    An unfinished record is an error rather than silently replaced: another process may be writing it.
    """
    folder = run_folder(config.runs_dir, config.group, config.run_name or algo)
    run = finished_run(folder, fingerprint=fingerprint)
    if run is None:
        return None
    summary = run["summary"]
    metrics = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    return BaselineResult(str(folder), metrics, float(summary.get("wall_time", 0.0)), skipped=True)


def linear_schedule(step: int, total: int, start: float, end: float, fraction: float) -> float:
    """``start`` decayed linearly to ``end`` over the first ``fraction`` of ``total`` steps, then flat."""
    progress = min(1.0, step / max(1.0, fraction * total))
    return start + progress * (end - start)
