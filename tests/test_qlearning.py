"""Tabular Q-learning: the TD update on numbers, bootstrapping on truncation, convergence, the run record."""

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from rlhf.envs.select import DialogueSelectEnv

from rlhf.data.prompts import load_prompts
from rlhf.rewards.base import CallableReward
from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD, SAMPLES, held_out_contexts
from rlhf.runs.records import read_run
from rlhf.training.qlearning import (
    QLearningConfig,
    load_q_table,
    q_learning,
    tabular_policy,
    td_update,
    train_q_learning,
)


def test_td_update_bootstraps_unless_terminated():
    q = np.array([[0.0, 0.0], [2.0, 1.0]])
    error = td_update(q, state=0, action=1, reward=1.0, next_state=1, terminated=False, alpha=0.5, gamma=0.9)
    assert error == pytest.approx(1.0 + 0.9 * 2.0)  # target r + γ max Q(s') = 2.8
    assert q[0, 1] == pytest.approx(1.4)
    error = td_update(q, state=0, action=1, reward=1.0, next_state=1, terminated=True, alpha=0.5, gamma=0.9)
    assert error == pytest.approx(1.0 - 1.4)  # target r alone
    assert q[0, 1] == pytest.approx(1.2)
    assert q[1].tolist() == [2.0, 1.0]  # only (s, a) moves


class TwoStateEnv(gymnasium.Env):
    """State 0: action 0 pays 0 and moves to state 1 (ending the episode by ``end``), action 1 pays 0.5 and
    terminates. State 1: action 0 pays 1, action 1 pays 0, both terminate. Episodes start in 0 or 1."""

    def __init__(self, end: str = "truncated") -> None:
        self.observation_space, self.action_space = spaces.Discrete(2), spaces.Discrete(2)
        self.end = end
        self.state = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = int(self.np_random.integers(2))
        return self.state, {}

    def step(self, action):
        if self.state == 0 and action == 0:
            self.state = 1
            return 1, 0.0, self.end == "terminated", self.end == "truncated", {}
        reward = 0.5 if self.state == 0 else float(action == 0)
        return self.state, reward, True, False, {}


@pytest.mark.parametrize(
    ("end", "gamma", "best"),
    [("truncated", 0.9, 0), ("truncated", 0.1, 1), ("terminated", 0.9, 1)],
)
def test_gamma_bootstraps_through_truncation_only(end, gamma, best):
    # Q(0, 0) -> γ·1 when the cut-off episode bootstraps from state 1, 0 when the episode really ended.
    env = TwoStateEnv(end)
    q, visits = np.zeros((2, 2)), np.zeros((2, 2), dtype=np.int64)
    config = QLearningConfig(total_steps=2000, learning_rate=0.2, gamma=gamma, exploration_fraction=0.5)
    q_learning(env, q, visits, config)
    assert q[1].argmax() == 0 and q[1, 0] == pytest.approx(1.0, abs=0.05)
    assert q[0].argmax() == best
    assert q[0, 0] == pytest.approx(gamma if end == "truncated" else 0.0, abs=0.05)


def test_converges_to_the_true_continuation():
    starts = load_prompts(split="train")[:12]
    # The corpus repeats prompts ("What is AI?") with other answers: any recorded answer to the prompt pays 1.
    recorded = {(c.turns, c.continuation) for c in starts}

    def continuation_reward(contexts, replies):
        return np.array([float((tuple(c), r) in recorded) for c, r in zip(contexts, replies, strict=True)])

    env = DialogueSelectEnv(reward=CallableReward(continuation_reward), gold=None, observation="index", num_contexts=12)
    q = np.zeros((env.observation_space.n, env.num_candidates))
    visits = np.zeros_like(q, dtype=np.int64)
    q_learning(env, q, visits, QLearningConfig(total_steps=1500, learning_rate=0.5, exploration_fraction=0.5))
    picks = [(s.turns, env.candidates_for(s)[int(q[env.contexts.index(s)].argmax())]) in recorded for s in starts]
    assert np.mean(picks) >= 0.9


def test_unknown_context_gets_a_uniform_pick():
    q, visits = np.array([[0.0, 5.0, 0.0, 0.0]]), np.ones((1, 4), dtype=np.int64)
    rng = np.random.default_rng(0)
    known = tabular_policy(q, visits, rng, lambda obs: 0)
    assert {known(None, list("abcd")) for _ in range(20)} == {1}
    unknown = tabular_policy(q, visits, rng, lambda obs: None)
    counts = np.bincount([unknown(None, list("abcd")) for _ in range(4000)], minlength=4)
    assert counts.min() > 900  # ~1000 each


def test_train_q_learning_writes_a_record_evaluated_like_ppo_and_skips_when_done(tmp_path, capsys):
    config = QLearningConfig(
        runs_dir=str(tmp_path), group="g", wandb_mode="disabled", num_contexts=8, total_steps=300, eval_every=100,
        eval_contexts=6,
    )  # fmt: skip
    result = train_q_learning(config)
    run = read_run(result.run_dir)
    assert run["info"]["status"] == "finished" and run["info"]["algo"] == "qlearning"
    evals = [row for row in run["metrics"] if ENV_REWARD in row]
    assert [row[SAMPLES] for row in evals] == [0, 100, 200, 300]
    for key in (ENV_REWARD, GOLD_REWARD, "eval_train/env_reward", "eval_train/heldout_known"):
        assert np.isfinite(evals[-1][key])
    held_out = [" | ".join(c.turns) for c in held_out_contexts(None, 6)]
    assert [row["context"] for row in run["samples"] if row["step"] == 300] == held_out
    assert run["summary"]["wall_time"] > 0 and run["summary"][SAMPLES] == 300
    assert load_q_table(result.run_dir).shape[1] == 8

    again = train_q_learning(config)
    assert again.skipped and again.metrics[ENV_REWARD] == result.metrics[ENV_REWARD]
    assert "skipped, finished run record exists" in capsys.readouterr().out
