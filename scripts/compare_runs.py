"""Write the comparison report of a group of runs: ``rlhf-gym report``.

python scripts/compare_runs.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("report")
