"""Models: the GPT policy, built offline from the corpus or loaded by name or path, and its generation."""
