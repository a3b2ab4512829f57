"""RLOO on a dialogue environment, with TRL's ``RLOOTrainer`` doing the optimisation.

REINFORCE Leave-One-Out: each of a prompt's ``num_generations`` replies is judged against the mean
reward of the *other* replies to that prompt, so the baseline is unbiased and needs no value model.
The KL to the reference (``beta``) enters the reward, as in the RLOO paper. The wiring (prompts, reward
function, evaluation, checkpoints) is :mod:`rlhf.training.online`'s, shared with GRPO.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlhf.training.online import OnlineConfig, train_online
from rlhf.training.policy_eval import PolicyRunResult

ALGO = "rloo"


@dataclass
class RLOOConfig(OnlineConfig):
    """One RLOO run (``configs/rloo/*.yaml``): :class:`~rlhf.training.online.OnlineConfig` plus RLOO's own."""

    normalize_advantages: bool = False  # scale advantages to unit std over the batch


def train_rloo(config: RLOOConfig) -> PolicyRunResult:
    """Train the policy with TRL's RLOO on ``config.env_id``'s reward; log, evaluate and checkpoint the run."""
    from trl import RLOOConfig as TRLRLOOConfig
    from trl import RLOOTrainer

    return train_online(config, ALGO, RLOOTrainer, TRLRLOOConfig, normalize_advantages=config.normalize_advantages)
