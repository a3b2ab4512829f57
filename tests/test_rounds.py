"""Iterated RLHF (rounds of labelling, reward model, PPO) and the oracle run, at the tiny sizes."""

import dataclasses
import json
from pathlib import Path

import pytest

from rlhf.config import load_config
from rlhf.runs.evaluation import KL
from rlhf.runs.records import read_run
from rlhf.training.ppo import PPOConfig, reference_path
from rlhf.training.reward_model import RewardModelConfig, train_reward_model
from rlhf.training.rounds import ORACLE, iterated_rlhf, oracle_config, round_budgets


def test_the_ppo_budget_is_split_over_the_rounds_in_whole_batches():
    assert round_budgets(480, 32, 1) == [480]
    assert round_budgets(480, 32, 2) == [256, 224]  # 15 updates: 8 + 7, as many samples as one run
    assert sum(round_budgets(480, 32, 3)) == 480
    with pytest.raises(ValueError, match="ppo_rounds 5 is more than the 4 PPO updates"):
        round_budgets(32, 8, 5)


def test_the_oracle_trains_on_the_envs_gold_scorer_not_on_the_reward_model():
    config = PPOConfig(env_kwargs={"reward_model": "artifacts/reward_model", "gold": "sentiment"}, tags=["x"])
    oracle = oracle_config(config)
    assert oracle.run_name == ORACLE and oracle.tags == ["x", "oracle"]
    assert oracle.env_kwargs == {"gold": "sentiment", "reward": "sentiment"}
    assert oracle_config(PPOConfig()).env_kwargs == {"reward": "default"}  # rlhf/Dialogue-v0's own gold


def test_a_reference_other_than_the_start_is_refused_with_lora():
    from rlhf.training.ppo import _check

    with pytest.raises(ValueError, match="ref_policy: with use_peft"):
        _check(PPOConfig(use_peft=True, ref_policy="some/folder"))


@pytest.mark.slow
def test_round_two_labels_the_round_one_policy_retrains_on_all_pairs_and_keeps_the_initial_reference(
    tmp_path, tiny_policy_config, tiny_policy
):
    reward = dataclasses.replace(
        load_config(RewardModelConfig, "configs/reward/tiny.yaml"),
        policy=tiny_policy.path, num_contexts=24, preferences_dir=str(tmp_path / "preferences"),
        output_dir=str(tmp_path / "reward_model"), runs_dir=str(tmp_path / "runs"), group="tiny",
        wandb_mode="disabled", device="cpu",
    )  # fmt: skip
    first = train_reward_model(reward)
    ppo = dataclasses.replace(
        load_config(PPOConfig, "configs/ppo/tiny.yaml"),
        policy=tiny_policy.path, runs_dir=str(tmp_path / "runs"), wandb_mode="disabled", total_episodes=32,
    )  # fmt: skip
    results = iterated_rlhf(ppo, reward, 2, first.path)

    runs = tmp_path / "runs" / "tiny"
    one, two = read_run(runs / "ppo-round1"), read_run(runs / "ppo-round2")
    assert [r.samples for r in results] == [16, 16]  # 4 updates of 8 split 2 + 2: the budget of one run
    assert "round-1" in one["info"]["tags"] and "round-2" in two["info"]["tags"]
    # Round 2 starts from round 1's policy, is rewarded by a reward model retrained on both rounds' pairs...
    assert two["info"]["config"]["policy"] == str(runs / "ppo-round1" / "final")
    second_model = Path(str(tmp_path / "reward_model") + "-round2")
    assert two["info"]["config"]["env_kwargs"]["reward_model"] == str(second_model)
    made = json.loads((second_model / "fingerprint.json").read_text())
    assert made["config"]["preferences"] == str(tmp_path / "preferences" / "rounds-1-to-2.jsonl")
    labelled = sorted(p for p in (tmp_path / "preferences").glob("*.jsonl") if not p.name.startswith("rounds-"))
    assert len(labelled) == 2  # round 1's labels and new ones from round 1's policy
    lines = lambda p: len(p.read_text().splitlines())  # noqa: E731
    assert lines(tmp_path / "preferences" / "rounds-1-to-2.jsonl") == sum(lines(p) for p in labelled)
    # ...and keeps the initial policy as its KL reference: it starts away from it, not at KL 0.
    assert reference_path(PPOConfig(**{**two["info"]["config"], "policy_kwargs": {}})) == tiny_policy.path
    kl_at_start = next(row[KL] for row in two["metrics"] if row["step"] == 0 and KL in row)
    assert kl_at_start > 1e-3
