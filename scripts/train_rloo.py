"""Train the policy with RLOO (TRL): ``rlhf-gym rloo``.

python scripts/train_rloo.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("rloo")
