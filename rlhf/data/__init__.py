"""Data: the chat format, the corpus and its one split, prompt sources, preference records, the user simulator."""
