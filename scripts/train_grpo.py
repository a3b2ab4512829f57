"""Train the policy with GRPO (TRL) on a registered environment's reward.

python scripts/train_grpo.py --config configs/grpo/default.yaml [--field value ...]

Examples: ``--run_name grpo-lr1e-4 --learning_rate 1e-4``, ``--resume true`` to continue an interrupted run
from its last checkpoint, ``--wandb_mode disabled``.
"""

from rlhf.config import parse_script_args
from rlhf.training.grpo import GRPOConfig, train_grpo


def main() -> None:
    """Parse the config, train, print where the run lies and its held-out numbers before and after."""
    result = train_grpo(parse_script_args(GRPOConfig))
    print(f"run record: {result.run_dir} ({result.steps} updates, {result.samples} samples, {result.seconds:.0f}s)")
    for key in sorted(set(result.before) | set(result.after)):
        print(f"  {key:22s} {result.before.get(key, float('nan')):8.3f} -> {result.after.get(key, float('nan')):8.3f}")


if __name__ == "__main__":
    main()
