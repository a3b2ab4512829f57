"""Train the policy with PPO (TRL): ``rlhf-gym ppo``.

python scripts/train_ppo.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("ppo")
