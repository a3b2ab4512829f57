"""Iterated RLHF: rounds of labelling, reward modelling and PPO, each on the policy the round before left.

The loop as practised (InstructGPT; Anthropic's online iterated RLHF, Bai et al. 2022):

* round 1 is the usual chain: pairs labelled from the initial policy's samples, a reward model, PPO;
* round k > 1 samples replies from round k-1's policy, the synthetic labeller labels new pairs on the same
  training contexts, a reward model is trained afresh on **all** pairs so far (so it learns the new
  policy's replies without forgetting the old ones; continuing round k-1's model for one round's steps
  instead gained less gold in both runs measured, docs/BENCHMARKS.md), and PPO continues from round k-1's
  policy on it, with the KL reference kept at the initial policy (``ref_policy``), so every round's KL is
  to one model.

PPO's budget (``total_episodes``) is split evenly over the rounds: R rounds cost as many PPO samples as one
run, so they compare with :func:`oracle_config`'s run, PPO on the gold reward itself with the whole budget,
the upper bound on what a learned reward can recover. Each round is a run in the group (``ppo-round<k>``,
tagged ``round-<k>``), its reward model ``<output_dir>-round<k>`` and its labels in ``preferences_dir``;
every step is reused when done, as everywhere in the toolkit.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

from rlhf.data.preferences import write_preferences
from rlhf.envs.registration import dialogue_env_kwargs
from rlhf.runs.report import ORACLE_TAG, round_tag
from rlhf.training.policy_eval import PolicyRunResult
from rlhf.training.ppo import FINAL, PPOConfig, train_ppo
from rlhf.training.reward_model import RewardModelConfig, label_preferences, train_reward_model

ORACLE = "ppo-oracle"


def round_budgets(total_episodes: int, batch_size: int, rounds: int) -> list[int]:
    """The PPO episodes of each round: ``total_episodes`` (in whole batches) split as evenly as possible."""
    if rounds < 1:
        raise ValueError(f"ppo_rounds must be >= 1, got {rounds}")
    updates = math.ceil(total_episodes / batch_size)
    if rounds > updates:
        raise ValueError(
            f"ppo_rounds {rounds} is more than the {updates} PPO updates of total_episodes {total_episodes} "
            f"(batch_size {batch_size}): every round needs at least one update"
        )
    return [batch_size * (updates // rounds + (k < updates % rounds)) for k in range(rounds)]


def concatenate(files: Sequence[Path], target: Path) -> Path:
    """``files`` (JSONL preference files, as the labeller writes them) one after the other in ``target``; a reward
    model keyed on its bytes (:func:`rlhf.runs.fingerprint.artefact_fingerprint`) is reused while they match."""
    lines = (line for f in files for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip())
    return write_preferences((json.loads(line) for line in lines), target)


def iterated_rlhf(
    ppo_config: PPOConfig, reward_config: RewardModelConfig, rounds: int, reward_model: str
) -> list[PolicyRunResult]:
    """Run ``rounds`` rounds of PPO from ``ppo_config.policy``, the first on ``reward_model`` (trained on
    ``reward_config``'s synthetic pairs), each later one on a reward model trained afresh on all pairs so far.

    Returns each round's PPO result; one round is a plain PPO run under ``ppo_config.run_name``.
    """
    if reward_config.preferences != "synthetic" and rounds > 1:
        raise ValueError(
            f"ppo_rounds {rounds}: later rounds label the current policy's replies with the synthetic labeller, "
            f"but the reward config reads its pairs from {reward_config.preferences!r}; set ppo_rounds 1, or "
            "label each round's replies yourself (rlhf-gym label) and train on them"
        )
    budgets = round_budgets(ppo_config.total_episodes, ppo_config.batch_size, rounds)
    initial = ppo_config.policy
    policy, files, results = initial, [], []
    for k, episodes in enumerate(budgets, start=1):
        round_reward = reward_config if k == 1 else dataclasses.replace(reward_config, seed=reward_config.seed + k - 1)
        files.append(label_preferences(round_reward, policy))  # round 1: the preferences stage's own file
        if k > 1:
            pairs = concatenate(files, Path(reward_config.preferences_dir) / f"rounds-1-to-{k}.jsonl")
            print(f"[round {k}] reward model from the base model on all {len(files)} rounds of pairs: {pairs}")
            report = train_reward_model(dataclasses.replace(
                reward_config, preferences=str(pairs), output_dir=f"{reward_config.output_dir}-round{k}",
                run_name=f"reward_model-round{k}",
            ))  # fmt: skip
            reward_model = report.path
            print(f"[round {k}] reward model {reward_model}: held-out pairwise accuracy {report.pairwise_accuracy:.3f}")
        config = dataclasses.replace(
            ppo_config,
            run_name=ppo_config.run_name if rounds == 1 else f"ppo-round{k}",
            policy=policy,
            ref_policy=ppo_config.ref_policy or (initial if k > 1 else None),
            total_episodes=episodes,
            env_kwargs={**ppo_config.env_kwargs, "reward_model": reward_model},
            tags=[*ppo_config.tags, round_tag(k)],
        )
        result = train_ppo(config)
        results.append(result)
        policy = str(Path(result.run_dir) / FINAL)
    return results


def oracle_config(ppo_config: PPOConfig) -> PPOConfig:
    """``ppo_config`` trained on the env's gold scorer itself instead of a learned reward, as run ``ppo-oracle``:
    with the same budget, the most gold a learned reward could recover."""
    env_kwargs = {k: v for k, v in ppo_config.env_kwargs.items() if k != "reward_model"}
    gold = {**dialogue_env_kwargs(ppo_config.env_id), **env_kwargs}.get("gold", "default")
    if gold is None:
        raise ValueError(f"{ppo_config.env_id} has no gold scorer (gold: null): there is no oracle to train on")
    return dataclasses.replace(
        ppo_config, run_name=ORACLE, env_kwargs={**env_kwargs, "reward": gold}, tags=[*ppo_config.tags, ORACLE_TAG]
    )
