"""PPO on the learned reward vs on the gold reward: how far does each move the held-out gold reward?

    python scripts/bench_ppo_rewards.py POLICY_DIR REWARD_MODEL_DIR [RUNS_DIR]

Runs ``configs/ppo/default.yaml`` three times on the same policy (reward model with ``kl_coef`` 0.05
and 0.2, gold ``default`` itself) and prints each run's held-out metrics before and after.
"""

import dataclasses
import sys

from rlhf.config import load_config
from rlhf.training.ppo import PPOConfig, train_ppo

VARIANTS = {
    "rm-kl0.05": (dict(kl_coef=0.05), True),
    "rm-kl0.2": (dict(kl_coef=0.2), True),
    "gold-kl0.05": (dict(kl_coef=0.05), False),
}

if __name__ == "__main__":
    policy, reward_model, runs_dir = (sys.argv[1:] + ["/tmp/bench_ppo_rewards"])[:3]
    base = load_config(PPOConfig, "configs/ppo/default.yaml")
    for name, (overrides, learned) in VARIANTS.items():
        run = dict(runs_dir=runs_dir, group="ppo-rewards", run_name=name, wandb_mode="disabled")
        config = dataclasses.replace(base, policy=policy, **run, **overrides)
        config.env_kwargs = {**config.env_kwargs, **({"reward_model": reward_model} if learned else {})}
        result = train_ppo(config)
        for when, metrics in (("before", result.before), ("after", result.after)):
            print(name, when, {k.removeprefix("eval/"): round(v, 3) for k, v in metrics.items()}, flush=True)
