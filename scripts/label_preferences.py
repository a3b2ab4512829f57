"""Label preference pairs: synthetically with a gold scorer, or by hand on the terminal.

python scripts/label_preferences.py --config configs/reward/default.yaml [--field value ...]
python scripts/label_preferences.py --config configs/reward/default.yaml --human [--count 20]

The synthetic file goes to ``preferences_dir`` (reused when labelled before under the same settings).
``--human`` shows ``--count`` held-out corpus contexts with two policy replies each; answer a, b,
s (skip) or q (quit). Each answer is appended at once to ``<preferences_dir>/human.jsonl``, and a
later session skips what is already there. Train on either file with ``--preferences <file>``.
"""

import sys
from pathlib import Path

from rlhf.config import parse_script_args
from rlhf.data.preferences import read_preferences
from rlhf.rewards.labeller import human_session
from rlhf.training.reward_model import RewardModelConfig, label_preferences, resolve_policy


def main(argv: list[str]) -> None:
    human, count = "--human" in argv, 20
    argv = [a for a in argv if a != "--human"]
    if "--count" in argv:
        i = argv.index("--count")
        count = int(argv[i + 1])
        del argv[i : i + 2]
    config = parse_script_args(RewardModelConfig, argv)
    policy = resolve_policy(config)
    if human:
        output = Path(config.preferences_dir) / "human.jsonl"
        human_session(policy, output, count, config.seed, config.max_new_tokens, config.device)
        return
    records, stats = read_preferences(label_preferences(config, policy))
    print(stats)
    for record in records[:3]:
        print(f"\n{record['prompt']}\n  chosen:   {record['chosen']}\n  rejected: {record['rejected']}")


if __name__ == "__main__":
    main(sys.argv[1:])
