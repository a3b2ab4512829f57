"""Train a reward model on preferences: ``rlhf-gym reward-model``.

python scripts/train_reward_model.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("reward-model")
