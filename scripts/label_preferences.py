"""Label preference pairs synthetically, or by hand with --human [--count N]: ``rlhf-gym label``.

python scripts/label_preferences.py [--config FILE] [--field value ...]
"""

from rlhf.cli import script_main

if __name__ == "__main__":
    script_main("label")
