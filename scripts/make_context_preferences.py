"""Write the context-dependent preference set (hh-rlhf rows) cut from the corpus, as hh-rlhf ships it.

    python scripts/make_context_preferences.py [tests/data/context_preferences]

``train.jsonl`` comes from the training side of the environments' context split (held-out fraction 0.1,
seed 0), ``test.jsonl`` from the held-out side only (its chosen replies are no training-side bot turn), so
a reward model pretrained on the training side's corpus comparisons never saw a test context. Chosen is
the corpus reply to the context, rejected a fluent reply to an unrelated context
(``rlhf.data.preferences.context_preferences``): a reward model must read the question to rank them.
"""

import sys
from pathlib import Path

from rlhf.data.preferences import context_preferences, write_preferences

# Pairing rounds per side: the held-out side has ~20 contexts, paired as often as it can be.
ROUNDS = {"train": 6, "test": 20}

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/context_preferences")
    for name, split in (("train", "train"), ("test", "heldout")):
        rows = context_preferences(split=split, rounds=ROUNDS[name])
        print(f"{len(rows)} pairs -> {write_preferences(rows, target / f'{name}.jsonl')}")
