"""Train the policy with GRPO (TRL): ``rlhf-gym grpo``.

python scripts/train_grpo.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("grpo")
