"""GRPO on a dialogue environment, with TRL's ``GRPOTrainer`` doing the optimisation.

Each update samples ``num_generations`` replies to each of ``batch_size / num_generations`` prompts,
scores them with the env's batched reward, and pushes up the replies that beat their group's mean
(scaled by the group's spread, ``scale_rewards``), clipped like PPO, with a ``beta``-weighted KL to
the reference. No value model and no reward model: the group is the baseline. The wiring (prompts,
reward function, evaluation, checkpoints) is :mod:`rlhf.training.online`'s, shared with RLOO.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlhf.training.online import OnlineConfig, train_online
from rlhf.training.policy_eval import PolicyRunResult

ALGO = "grpo"


@dataclass
class GRPOConfig(OnlineConfig):
    """One GRPO run (``configs/grpo/*.yaml``): :class:`~rlhf.training.online.OnlineConfig` plus GRPO's own."""

    loss_type: str = "dapo"  # TRL's default: token-level normalisation over the batch
    scale_rewards: str = "group"  # divide advantages by the group's std ("group"), the batch's, or "none"


def train_grpo(config: GRPOConfig) -> PolicyRunResult:
    """Train the policy with TRL's GRPO on ``config.env_id``'s reward; log, evaluate and checkpoint the run."""
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    return train_online(
        config, ALGO, GRPOTrainer, TRLGRPOConfig, loss_type=config.loss_type, scale_rewards=config.scale_rewards
    )
