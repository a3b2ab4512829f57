"""Train the policy with DPO (TRL) on the reward model's preference pairs.

python scripts/train_dpo.py --config configs/dpo/default.yaml [--field value ...]

Examples: ``--run_name dpo-lr1e-4 --learning_rate 1e-4``, ``--resume true`` to continue an interrupted run
from its last checkpoint, ``--wandb_mode disabled``.
"""

from rlhf.config import parse_script_args
from rlhf.training.dpo import DPOConfig, train_dpo


def main() -> None:
    """Parse the config, train, print where the run lies and its held-out numbers before and after."""
    result = train_dpo(parse_script_args(DPOConfig))
    print(f"run record: {result.run_dir} ({result.steps} updates, {result.samples} samples, {result.seconds:.0f}s)")
    for key in sorted(set(result.before) | set(result.after)):
        print(f"  {key:22s} {result.before.get(key, float('nan')):8.3f} -> {result.after.get(key, float('nan')):8.3f}")


if __name__ == "__main__":
    main()
