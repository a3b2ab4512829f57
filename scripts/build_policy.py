"""Build (or reuse) the policy and print sample dialogues: ``rlhf-gym policy``.

python scripts/build_policy.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("policy")
