"""Write the context-dependent preference set (hh-rlhf rows) cut from the corpus.

    python scripts/make_context_preferences.py [tests/data/context_preferences.jsonl]

Chosen is the corpus reply to the context, rejected a fluent reply to an unrelated context (4 for each;
``rlhf.data.preferences.context_preferences``): a reward model must read the question to rank them.
"""

import sys

from rlhf.data.preferences import context_preferences, write_preferences

if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "tests/data/context_preferences.jsonl"
    rows = context_preferences()
    print(f"{len(rows)} pairs -> {write_preferences(rows, target)}")
