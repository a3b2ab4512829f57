"""Label (or read) preferences and train a reward model on them with TRL's RewardTrainer.

python scripts/train_reward_model.py --config configs/reward/default.yaml [--field value ...]

Prints the preference counts, then the held-out pairwise accuracy and the Spearman correlation with
the gold scorer; both are also in ``<output_dir>/eval.json`` and the run record.
"""

from rlhf.config import parse_script_args
from rlhf.training.reward_model import RewardModelConfig, train_reward_model


def main() -> None:
    config = parse_script_args(RewardModelConfig)
    report = train_reward_model(config)
    state = "reused" if report.reused else f"trained in {report.seconds:.0f}s"
    print(f"\nreward model {state}: {report.path}")
    print(f"preferences: {report.preferences} ({report.train_pairs} train / {report.heldout_pairs} held-out pairs)")
    print(f"held-out pairwise accuracy: {report.pairwise_accuracy:.3f}")
    print(f"Spearman vs gold {config.gold!r} on {report.heldout_replies} held-out replies: {report.spearman:.3f}")


if __name__ == "__main__":
    main()
