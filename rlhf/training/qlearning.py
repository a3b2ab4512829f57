"""Tabular Q-learning on ``rlhf/DialogueSelectIndex-v0``: one row of Q-values per context, one column per candidate.

The update (Watkins' Q-learning, Sutton & Barto eq. 6.8), with ε-greedy exploration::

    Q(s, a) ← Q(s, a) + α (r + γ max_a' Q(s', a') − Q(s, a))

``terminated`` (the recorded dialogue ended) means no future: the target is ``r``. ``truncated`` (the
episode hit ``max_turns`` but the dialogue goes on) still bootstraps from ``s'``, the next context.

A table cannot generalise: a held-out context is a state it has never seen, so on the shared held-out
evaluation it picks uniformly at random among that context's candidates. That is the honest tabular
result; ``eval_train/*`` scores the greedy policy on its own training contexts to show what it learned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD, SAMPLES, evaluate_replies
from rlhf.runs.records import RunRecord, marks_failure
from rlhf.training.baselines import (
    SELECT_INDEX_ENV_ID,
    BaselineResult,
    HeldOutEvaluation,
    SelectEnvConfig,
    build_rewards,
    dialogue_settings,
    finished_result,
    linear_schedule,
    make_select_env,
    run_fingerprint,
)


@dataclass
class QLearningConfig(SelectEnvConfig):
    """Tabular Q-learning on the select env with context-index states (``configs/qlearning/default.yaml``)."""

    num_contexts: int | None = 128  # a table row per context: keep it small enough to visit each often
    total_steps: int = 4000
    learning_rate: float = 0.5  # α
    gamma: float = 0.9  # γ: matters when max_turns > 1
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.6  # share of total_steps over which ε decays


def td_update(
    q: np.ndarray, state: int, action: int, reward: float, next_state: int, terminated: bool, alpha: float, gamma: float
) -> float:
    """One Q-learning update of the table ``q`` in place; returns the TD error.

    No bootstrap when ``terminated``; a truncated episode still bootstraps from ``next_state``.
    """
    target = reward if terminated else reward + gamma * float(q[next_state].max())
    td_error = target - float(q[state, action])
    q[state, action] += alpha * td_error
    return td_error


def q_learning(
    env: gymnasium.Env,
    q: np.ndarray,
    visits: np.ndarray,
    config: QLearningConfig,
    on_step: Callable[[int], None] | None = None,
) -> None:
    """Run ``config.total_steps`` ε-greedy steps on ``env`` (Discrete observations), updating ``q`` and the
    (state, action) ``visits`` count in place; ``on_step(step)`` runs after every step (the evaluation hook)."""
    rng = np.random.default_rng(config.seed)
    env.action_space.seed(config.seed)
    state, _ = env.reset(seed=config.seed)
    from tqdm.auto import tqdm

    for step in tqdm(range(1, config.total_steps + 1), desc="qlearning", unit="step", mininterval=1.0):
        epsilon = linear_schedule(
            step, config.total_steps, config.epsilon_start, config.epsilon_end, config.exploration_fraction
        )
        if rng.random() < epsilon:
            action = int(env.action_space.sample())
        else:  # greedy, ties broken at random so an all-zero row is not always action 0
            row = q[state]
            action = int(rng.choice(np.flatnonzero(row == row.max())))
        next_state, reward, terminated, truncated, _ = env.step(action)
        td_update(q, state, action, float(reward), next_state, terminated, config.learning_rate, config.gamma)
        visits[state, action] += 1
        state = next_state
        if terminated or truncated:
            state, _ = env.reset()
        if on_step is not None:
            on_step(step)


def tabular_policy(
    q: np.ndarray, visits: np.ndarray, rng: np.random.Generator, row_of: Callable[[Any], int | None]
) -> Callable[[Any, list[str]], int]:
    """Greedy on the row of a visited state; uniform at random among the candidates where ``row_of(observation)``
    is ``None`` (a context the table has no row for) or the row was never visited."""

    def act(observation: Any, candidates: list[str]) -> int:
        state = row_of(observation)
        if state is None or visits[state].sum() == 0:
            return int(rng.integers(len(candidates)))
        return int(q[state].argmax())

    return act


@marks_failure
def train_q_learning(config: QLearningConfig) -> BaselineResult:
    """Train tabular Q-learning, evaluate it like PPO every ``eval_every`` steps and write its run record.

    Skipped (the finished record's numbers returned) when ``<runs_dir>/<group>/<run_name or "qlearning">``
    is a finished run record.
    """
    fingerprint = run_fingerprint(config, "qlearning", SELECT_INDEX_ENV_ID)
    done = finished_result(config, "qlearning", fingerprint)
    if done is not None:
        return done
    started = time.time()
    settings = dialogue_settings(config)
    rewards = build_rewards(settings)
    index = dict(observation="index")
    env = make_select_env(
        config, SELECT_INDEX_ENV_ID, False, rewards, settings, num_contexts=config.num_contexts, **index
    )
    heldout_env = make_select_env(config, SELECT_INDEX_ENV_ID, True, rewards, settings, **index)
    env.unwrapped.prefill_scores()
    evaluate = HeldOutEvaluation(heldout_env, config)

    select, heldout = env.unwrapped, heldout_env.unwrapped
    # A held-out context has a table row only if it is a training context with the very same candidates.
    row = {(c.turns, tuple(select.candidates_for(c))): i for i, c in enumerate(select.contexts)}
    heldout_keys = {
        i: (heldout.contexts[i].turns, tuple(heldout.candidates_for(heldout.contexts[i]))) for i in evaluate.indices
    }
    heldout_row = {i: row.get(key) for i, key in heldout_keys.items()}
    train_indices = select.start_indices[: config.eval_contexts]
    train_contexts = [select.contexts[i].turns for i in train_indices]
    q = np.zeros((select.observation_space.n, select.num_candidates))
    visits = np.zeros_like(q, dtype=np.int64)
    rng = np.random.default_rng(config.seed + 1)

    record = RunRecord.for_config(
        config, algo="qlearning", env_id=SELECT_INDEX_ENV_ID, tags=("baseline",), fingerprint=fingerprint
    )
    print(f"qlearning: {len(select.contexts)} states x {select.num_candidates} candidates, {config.total_steps} steps")
    latest: dict[str, float] = {}

    def log_eval(step: int) -> None:
        metrics, rows = evaluate(tabular_policy(q, visits, rng, heldout_row.get))
        train_act = tabular_policy(q, visits, rng, lambda state: state)
        candidates = [select.candidates_for(select.contexts[i]) for i in train_indices]
        replies = [cands[train_act(i, cands)] for i, cands in zip(train_indices, candidates, strict=True)]
        train_metrics, _ = evaluate_replies(train_contexts, replies, select.reward_fn, select.gold_fn)
        metrics.update({k.replace("eval/", "eval_train/", 1): v for k, v in train_metrics.items()})
        metrics["eval_train/heldout_known"] = float(np.mean([r is not None for r in heldout_row.values()]))
        metrics["train/states_visited"] = float((visits.sum(axis=1) > 0).mean())
        metrics[SAMPLES] = step
        record.log(metrics, step=step)
        record.log_samples(rows[:8], step=step)
        latest.update(metrics)
        gold = metrics.get(GOLD_REWARD, float("nan"))
        print(
            f"  step {step:>6}: held-out env reward {metrics[ENV_REWARD]:.3f} gold {gold:.3f}"
            f" | training contexts env reward {metrics['eval_train/env_reward']:.3f}"
        )

    def on_step(step: int) -> None:
        if step % config.eval_every == 0 or step == config.total_steps:
            log_eval(step)

    log_eval(0)
    q_learning(env, q, visits, config, on_step)
    np.save(record.folder / "q_table.npy", q)
    seconds = time.time() - started
    summary = {**latest, "wall_time": round(seconds, 2), SAMPLES: config.total_steps}
    record.finish(summary)
    env.close()
    heldout_env.close()
    print(f"qlearning: done in {seconds:.1f}s, run record {record.folder}")
    return BaselineResult(str(record.folder), summary, seconds, skipped=False)


def load_q_table(run_dir: str | Path) -> np.ndarray:
    """The Q-table a finished run saved (``q_table.npy`` in its record folder)."""
    path = Path(run_dir) / "q_table.npy"
    if not path.is_file():
        raise FileNotFoundError(f"no Q-table at {path}: is {run_dir} a finished qlearning run record?")
    return np.load(path)
