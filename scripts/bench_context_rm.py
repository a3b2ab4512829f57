"""Held-out accuracy of reward models on the context preference set: the numbers in docs/BENCHMARKS.md.

    python scripts/bench_context_rm.py [--policy DIR] [--out DIR] [--seeds 0 1 2] [--pmp] [--field value ...]

Each reward model is the README's command ``rlhf-gym reward-model --preferences tests/data/context_preferences
--heldout_preferences tests/data/context_preferences`` (train.jsonl to train, test.jsonl to evaluate) on
``configs/reward/default.yaml``, once with the relevance term (``context_match: true``, the default) and once
without it, for each seed; ``--pmp`` adds preference-model pretraining rows, other ``--field value`` pairs are
passed on. The standard error beside each accuracy counts pairs as independent; the test set holds ~20
contexts, so read differences under ~0.05 as noise.
"""

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from rlhf.config import load_config
from rlhf.training.reward_model import RewardModelConfig, train_reward_model

REPO = Path(__file__).resolve().parents[1]
SET = str(REPO / "tests" / "data" / "context_preferences")


def with_error(accuracy: float, n: int) -> str:
    return f"{accuracy:.3f} ± {math.sqrt(accuracy * (1 - accuracy) / n):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="default", help="policy folder (default: built from the config)")
    parser.add_argument("--out", default="/tmp/bench_context_rm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pmp", action="store_true", help="also with preference-model pretraining")
    args, overrides = parser.parse_known_args()
    out = Path(args.out)
    base = load_config(RewardModelConfig, REPO / "configs" / "reward" / "default.yaml", overrides)
    base = dataclasses.replace(
        base, policy=args.policy, preferences=SET, heldout_preferences=SET, wandb_mode="disabled",
        runs_dir=str(out / "runs"), cache_dir=base.cache_dir if "--cache_dir" in overrides else str(out / "cache"),
    )  # fmt: skip
    variants = [
        ("relevance term (context_match: true)", True, False),
        ("plain GPT-2 (context_match: false)", False, False),
    ]
    if args.pmp:
        variants += [("relevance term + PMP", True, True), ("plain GPT-2 + PMP", False, True)]
    for name, match, pmp in variants:
        accuracies, seconds, n = [], [], 0
        for seed in args.seeds:
            started = time.time()
            folder = out / f"rm-match-{match}-pmp-{pmp}-seed-{seed}"
            settings = dataclasses.replace(base, context_match=match, pmp=pmp, seed=seed, output_dir=str(folder))
            report = train_reward_model(settings)
            accuracies.append(report.pairwise_accuracy)
            seconds.append(time.time() - started)
            n = report.heldout_pairs
        each = ", ".join(with_error(a, n) for a in accuracies)
        print(
            f"{name}: held-out accuracy {each} (seeds {args.seeds}; mean {np.mean(accuracies):.3f}, "
            f"min {min(accuracies):.3f}) on {n} pairs, {np.mean(seconds):.0f} s a model"
        )


if __name__ == "__main__":
    main()
