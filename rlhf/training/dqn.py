"""DQN from Stable-Baselines3 on ``rlhf/DialogueSelect-v0`` with hashed bag-of-words observations.

The observation holds the context's features and each candidate's, so one Q-network scores "reply k to
this context" for contexts it never saw: unlike the table of :mod:`rlhf.training.qlearning` it can generalise to
the held-out contexts. SB3 owns the algorithm (replay buffer, target network, ε-greedy schedule, the
TD target ``r + γ (1 − terminated) max_a' Q_target(s', a')``, with timeouts bootstrapped); two SB3
callbacks run PPO's held-out evaluation and log training statistics to the run record and wandb.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD, SAMPLES
from rlhf.runs.records import RunRecord, marks_failure
from rlhf.training.baselines import (
    SELECT_ENV_ID,
    BaselineResult,
    HeldOutEvaluation,
    SelectEnvConfig,
    build_rewards,
    dialogue_settings,
    finished_result,
    make_select_env,
    run_fingerprint,
)


@dataclass
class DQNConfig(SelectEnvConfig):
    """SB3 DQN on the select env with feature observations (``configs/dqn/default.yaml``)."""

    num_contexts: int | None = 256  # training prompts; every candidate of each is scored once, up front
    feature_dim: int = 64  # hashed bag-of-words buckets per text
    total_timesteps: int = 5000
    learning_rate: float = 1e-3
    buffer_size: int = 10_000
    learning_starts: int = 500
    batch_size: int = 64
    gamma: float = 0.9
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 250
    exploration_fraction: float = 0.5
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    net_arch: list[int] = field(default_factory=lambda: [64])
    log_every: int = 500  # env steps between training-statistics rows
    device: str = "cpu"  # a 64-unit MLP is faster on the CPU than through CUDA launches
    torch_threads: int = 1  # CPU threads for the Q-network: more only add contention at this size (0: torch's default)


class HeldOutEvalCallback(BaseCallback):
    """Every ``eval_every`` env steps (and at the start and end): PPO's held-out evaluation of the greedy
    Q-network, logged to the run record (and so to wandb) with ``samples`` = env steps so far."""

    def __init__(self, evaluate: HeldOutEvaluation, record: RunRecord, eval_every: int, verbose: int = 1) -> None:
        super().__init__(verbose)
        self.evaluate = evaluate
        self.record = record
        self.eval_every = eval_every
        self.latest: dict[str, float] = {}
        self._last_eval = -1

    def _on_training_start(self) -> None:
        self._run_eval()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_every == 0:
            self._run_eval()
        return True

    def _on_training_end(self) -> None:
        if self._last_eval != self.num_timesteps:
            self._run_eval()

    def _run_eval(self) -> None:
        metrics, rows = self.evaluate(lambda obs, _candidates: int(self.model.predict(obs, deterministic=True)[0]))
        metrics[SAMPLES] = self.num_timesteps
        self.record.log(metrics, step=self.num_timesteps)
        self.record.log_samples(rows[:8], step=self.num_timesteps)
        self.latest = metrics
        self._last_eval = self.num_timesteps
        if self.verbose:
            gold = metrics.get(GOLD_REWARD, float("nan"))
            print(f"  step {self.num_timesteps:>6}: held-out env reward {metrics[ENV_REWARD]:.3f} gold {gold:.3f}")


class TrainStatsCallback(BaseCallback):
    """Every ``log_every`` env steps: mean step reward since the last row, ε and the TD loss, to the run record."""

    def __init__(self, record: RunRecord, log_every: int) -> None:
        super().__init__()
        self.record = record
        self.log_every = log_every
        self._rewards: deque[float] = deque()

    def _on_step(self) -> bool:
        self._rewards.extend(np.asarray(self.locals["rewards"], dtype=float).tolist())
        if self.num_timesteps % self.log_every == 0:
            stats = {"train/step_reward": float(np.mean(self._rewards)), "train/epsilon": self.model.exploration_rate}
            loss = self.model.logger.name_to_value.get("train/loss")
            if loss is not None:
                stats["train/loss"] = float(loss)
            self.record.log({**stats, SAMPLES: self.num_timesteps}, step=self.num_timesteps)
            self._rewards.clear()
        return True


@marks_failure
def train_dqn(config: DQNConfig) -> BaselineResult:
    """Train SB3's DQN on the select env, evaluate it like PPO every ``eval_every`` steps, save the model in
    its run record. Skipped when ``<runs_dir>/<group>/<run_name or "dqn">`` is a finished run record."""
    from stable_baselines3 import DQN

    fingerprint = run_fingerprint(config, "dqn", SELECT_ENV_ID)
    done = finished_result(config, "dqn", fingerprint)
    if done is not None:
        return done
    started = time.time()
    settings = dialogue_settings(config)
    rewards = build_rewards(settings)
    features = dict(observation="features", feature_dim=config.feature_dim)
    env = make_select_env(config, SELECT_ENV_ID, False, rewards, settings, num_contexts=config.num_contexts, **features)
    heldout_env = make_select_env(config, SELECT_ENV_ID, True, rewards, settings, **features)
    pairs = env.unwrapped.prefill_scores()
    evaluate = HeldOutEvaluation(heldout_env, config)

    record = RunRecord.for_config(config, algo="dqn", env_id=SELECT_ENV_ID, tags=("baseline",), fingerprint=fingerprint)
    print(f"dqn: {pairs} (context, candidate) pairs scored, {config.total_timesteps} steps")
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        gamma=config.gamma,
        train_freq=config.train_freq,
        gradient_steps=config.gradient_steps,
        target_update_interval=config.target_update_interval,
        exploration_fraction=config.exploration_fraction,
        exploration_initial_eps=config.exploration_initial_eps,
        exploration_final_eps=config.exploration_final_eps,
        policy_kwargs=dict(net_arch=list(config.net_arch)),
        seed=config.seed,
        device=config.device,
    )
    evaluation = HeldOutEvalCallback(evaluate, record, config.eval_every)
    callbacks = CallbackList([evaluation, TrainStatsCallback(record, config.log_every)])
    threads = torch.get_num_threads()
    try:
        if config.torch_threads > 0:
            # Batches of 64 x 576 are far too small to split: on 2 busy cores 2 threads ran 5x slower than 1.
            torch.set_num_threads(config.torch_threads)
        model.learn(config.total_timesteps, callback=callbacks, progress_bar=True)
    finally:
        torch.set_num_threads(threads)
    model.save(record.folder / "dqn_model.zip")
    seconds = time.time() - started
    summary = {**evaluation.latest, "wall_time": round(seconds, 2), SAMPLES: model.num_timesteps}
    record.finish(summary)
    env.close()
    heldout_env.close()
    print(f"dqn: done in {seconds:.1f}s, run record {record.folder}")
    return BaselineResult(str(record.folder), summary, seconds, skipped=False)
