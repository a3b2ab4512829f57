"""Train the tabular Q-learning baseline: ``rlhf-gym qlearning``.

python scripts/train_qlearning.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("qlearning")
