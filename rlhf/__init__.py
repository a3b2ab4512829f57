"""rlhf-gym: reinforcement learning from feedback on dialogue."""

__version__ = "0.1.0"
