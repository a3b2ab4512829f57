"""Train the policy with DPO (TRL): ``rlhf-gym dpo``.

python scripts/train_dpo.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("dpo")
