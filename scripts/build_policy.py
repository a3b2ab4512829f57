"""Build (or reuse) the policy and print sample dialogues.

python scripts/build_policy.py --config configs/policy/default.yaml [--field value ...]
"""

from rlhf.config import parse_script_args
from rlhf.models.policy import PolicyConfig
from rlhf.pipeline import policy_stage

if __name__ == "__main__":
    policy_stage(parse_script_args(PolicyConfig))
