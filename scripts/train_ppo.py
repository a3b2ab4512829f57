"""Train the policy with PPO (TRL) on a registered environment's reward.

python scripts/train_ppo.py --config configs/ppo/default.yaml [--field value ...]

Examples: ``--total_episodes 320``, ``--run_name ppo-lr3e-4 --learning_rate 3e-4``, ``--resume true`` to
continue an interrupted run from its last checkpoint, ``--wandb_mode disabled``.
"""

from rlhf.config import parse_script_args
from rlhf.training.ppo import PPOConfig, train_ppo


def main() -> None:
    """Parse the config, train, print where the run lies and its held-out numbers before and after."""
    result = train_ppo(parse_script_args(PPOConfig))
    print(f"run record: {result.run_dir} ({result.steps} updates, {result.samples} samples, {result.seconds:.0f}s)")
    for key in sorted(set(result.before) | set(result.after)):
        print(f"  {key:22s} {result.before.get(key, float('nan')):8.3f} -> {result.after.get(key, float('nan')):8.3f}")


if __name__ == "__main__":
    main()
