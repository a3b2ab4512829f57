"""Train the DQN baseline: ``rlhf-gym dqn``.

python scripts/train_dqn.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("dqn")
