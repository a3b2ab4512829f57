"""Held-out accuracy of reward models on the context preference set, with and without preference-model
pretraining (PMP), and of the PMP backbone alone: the numbers in docs/BENCHMARKS.md.

    OMP_NUM_THREADS=1 python scripts/bench_context_rm.py [--policy DIR] [--out DIR] [--field value ...]

Each reward model is ``rlhf-gym reward-model --config configs/reward/default.yaml --preferences
tests/data/context_preferences --heldout_preferences tests/data/context_preferences`` (train.jsonl to train,
test.jsonl to evaluate), other ``--field value`` pairs passed on. The standard error beside each accuracy
counts pairs as independent; the test set holds ~20 contexts, so read differences under ~0.05 as noise.
"""

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

from rlhf.config import load_config
from rlhf.data.preferences import read_preferences
from rlhf.rewards.reward_model import RewardModelScorer
from rlhf.training.reward_model import (
    POLICY_BACKBONE,
    RewardModelConfig,
    pairwise_accuracy,
    pmp_dir,
    resolve_policy,
    train_reward_model,
)

SET = "tests/data/context_preferences"


def with_error(accuracy: float, n: int) -> str:
    return f"{accuracy:.3f} ± {math.sqrt(accuracy * (1 - accuracy) / n):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="default", help="policy folder (default: built from the config)")
    parser.add_argument("--out", default="/tmp/bench_context_rm")
    args, overrides = parser.parse_known_args()
    out = Path(args.out)
    base = load_config(RewardModelConfig, "configs/reward/default.yaml", overrides)
    base = dataclasses.replace(
        base, policy=args.policy, preferences=SET, heldout_preferences=SET, wandb_mode="disabled",
        runs_dir=str(out / "runs"), cache_dir=base.cache_dir if "--cache_dir" in overrides else str(out / "cache"),
    )  # fmt: skip
    test, _ = read_preferences(SET, split="test")
    rows = []
    for name, pmp in (("(a) no PMP", False), ("(b) PMP, then the preferences", True)):
        started = time.time()
        report = train_reward_model(dataclasses.replace(base, pmp=pmp, output_dir=str(out / f"rm-pmp-{pmp}")))
        rows.append((name, report.pairwise_accuracy, report.heldout_pairs, round(time.time() - started)))
    policy = resolve_policy(base) if base.base_model == POLICY_BACKBONE else base.base_model
    backbone = pmp_dir(base, policy)
    pmp_report = json.loads((backbone / "fingerprint.json").read_text())["report"]
    rows.append(("(c) PMP alone", pairwise_accuracy(RewardModelScorer(backbone, device="cpu"), test), len(test), 0))
    print(f"PMP: {pmp_report}")
    for name, accuracy, n, seconds in rows:
        print(f"{name}: held-out accuracy {with_error(accuracy, n)} on {n} pairs ({seconds} s in all)")


if __name__ == "__main__":
    main()
