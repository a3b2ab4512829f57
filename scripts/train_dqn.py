"""Train the DQN baseline (stable-baselines3) on the select env and write its run record.

python scripts/train_dqn.py --config configs/dqn/default.yaml [--field value ...]
"""

from rlhf.config import parse_script_args
from rlhf.training.dqn import DQNConfig, train_dqn

if __name__ == "__main__":
    train_dqn(parse_script_args(DQNConfig))
