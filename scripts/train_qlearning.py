"""Train the tabular Q-learning baseline on the select env and write its run record.

python scripts/train_qlearning.py --config configs/qlearning/default.yaml [--field value ...]
"""

from rlhf.config import parse_script_args
from rlhf.training.qlearning import QLearningConfig, train_q_learning

if __name__ == "__main__":
    train_q_learning(parse_script_args(QLearningConfig))
