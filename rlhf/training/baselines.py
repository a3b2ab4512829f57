"""What the select-env baselines (tabular Q-learning and DQN) share.

The config of the select env and of the evaluation, the select env built from a registered dialogue env
(its reward, prompts and gold), the held-out evaluator that puts a baseline's numbers beside PPO's, and
the "skip when the finished run record exists" check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium

from rlhf.envs.registration import dialogue_env_kwargs
from rlhf.rewards.base import RewardFunction
from rlhf.rewards.resolve import resolve_reward
from rlhf.runs.evaluation import evaluate_replies
from rlhf.runs.fingerprint import env_identity, stage_fingerprint
from rlhf.runs.records import RunSettings, finished_run, run_folder

SELECT_ENV_ID = "rlhf/DialogueSelect-v0"
SELECT_INDEX_ENV_ID = "rlhf/DialogueSelectIndex-v0"


# -- shared by the select-env baselines --------------------------------------------------------------


@dataclass
class SelectEnvConfig(RunSettings):
    """The select env both baselines train on and the held-out evaluation they share with PPO.

    The select env carries the reward, prompts, gold scorer, split and episode length of the dialogue env
    ``env_id`` as it is registered (``"module:id"`` imports ``module`` first), so a custom env trains the
    baselines on its own reward. A field left ``None`` keeps the env's own value; one set here replaces it.
    """

    env_id: str = "rlhf/Dialogue-v0"  # the registered dialogue env whose reward, prompts and gold are used
    reward: str | None = None  # a gold scorer name or a reward-model folder (None: the env's own)
    reward_model: str | None = None  # a reward-model folder; replaces the reward when set
    gold: str | None = None  # the gold scorer reported beside the reward (None: the env's own; "none": no gold)
    prompts: str | None = None  # a prompt source (None: the env's own; the corpus for the rlhf/ ids)
    heldout_fraction: float | None = None  # None: the env's own (0.1 by default)
    num_candidates: int = 8
    num_contexts: int | None = None  # train on the first N prompts only (None: all)
    max_turns: int | None = None  # None: the env's own (1 by default: one reply per episode)
    eval_every: int = 1000  # env steps between evaluations
    eval_contexts: int = 64  # the first N held-out contexts, as PPO
    seed: int = 0  # the agent's seed, and the env's when it was registered without one


@dataclass
class BaselineResult:
    """A finished baseline run: its record folder, final metrics and wall time."""

    run_dir: str
    metrics: dict[str, float]
    seconds: float
    skipped: bool


# What a select env takes over from the registered dialogue env (the rest, such as the number of candidates,
# is the baseline's own).
CARRIED = ("reward", "reward_model", "gold", "prompts", "split", "heldout_fraction", "seed", "max_turns", "simulator",
           "max_context_chars")  # fmt: skip


def dialogue_settings(config: SelectEnvConfig) -> dict[str, Any]:
    """The registered kwargs of ``config.env_id`` that a select env takes, with the config's overrides on top."""
    registered = dialogue_env_kwargs(config.env_id)
    settings: dict[str, Any] = {"seed": config.seed, **{k: v for k, v in registered.items() if k in CARRIED}}
    for name in ("reward", "gold", "prompts", "heldout_fraction", "max_turns"):
        if getattr(config, name) is not None:
            settings[name] = getattr(config, name)
    if config.reward is not None:
        settings.pop("reward_model", None)  # a named reward replaces a reward model the env was registered with
    if config.reward_model is not None:
        settings["reward_model"] = config.reward_model
    if isinstance(settings.get("gold"), str) and settings["gold"].lower() == "none":
        settings["gold"] = None
    return settings


def build_rewards(settings: dict[str, Any]) -> tuple[RewardFunction, RewardFunction | None]:
    """The reward and the gold scorer of :func:`dialogue_settings`, built once and shared by the train and
    held-out envs (a reward model loads once)."""
    reward = resolve_reward(settings.get("reward_model") or settings.get("reward", "default"))
    gold = settings.get("gold", "default")
    return reward, (resolve_reward(gold) if gold is not None else None)


def make_select_env(
    config: SelectEnvConfig, select_id: str, held_out: bool, rewards, settings: dict[str, Any], **kwargs: Any
) -> gymnasium.Env:
    """``gymnasium.make(select_id)`` with the dialogue env's settings and ``rewards``: its training split (the
    split it was registered with, ``"train"`` by default), or with ``held_out`` the held-out split."""
    reward, gold = rewards
    carried = {k: v for k, v in settings.items() if k not in ("reward", "reward_model", "gold", "split")}
    split = "heldout" if held_out else settings.get("split", "train")
    return gymnasium.make(
        select_id, reward=reward, gold=gold, split=split, num_candidates=config.num_candidates, **carried, **kwargs
    )


class HeldOutEvaluation:
    """PPO's evaluation for a select-env agent: reply to the same held-out contexts by picking a candidate.

    The contexts are the first ``eval_contexts`` of the held-out select env, which is split from the same
    prompt source as PPO's env, so both reply to the same contexts. ``act(observation, candidates) -> action``
    sees the held-out env's observation of each context and its candidate replies; the replies are scored by
    :func:`rlhf.runs.evaluation.evaluate_replies` with the env's reward and gold scorer.
    """

    def __init__(self, env: gymnasium.Env, config: SelectEnvConfig) -> None:
        self.env = env
        select = env.unwrapped
        self.indices = select.start_indices[: config.eval_contexts]
        self.contexts = [select.contexts[i] for i in self.indices]

    def __call__(self, act: Callable[[Any, list[str]], int]) -> tuple[dict[str, float], list[dict[str, Any]]]:
        replies = []
        for index in self.indices:
            observation, _ = self.env.reset(options={"context_index": index})
            candidates = self.env.unwrapped.candidates
            replies.append(candidates[int(act(observation, candidates))])
        select = self.env.unwrapped
        return evaluate_replies([c.turns for c in self.contexts], replies, select.reward_fn, select.gold_fn)


def run_fingerprint(config: SelectEnvConfig, algo: str, select_id: str) -> dict[str, Any]:
    """What makes a baseline run: its config, the registered dialogue env it reads (reward, prompts, gold) and
    the reward-model folder and prompt files they name (see :mod:`rlhf.runs.fingerprint`)."""
    return stage_fingerprint(config, algo=algo, env=env_identity(config.env_id), select_env=select_id)


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
