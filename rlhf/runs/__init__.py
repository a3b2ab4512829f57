"""Runs: run records (local and wandb), the evaluation every algorithm shares, and the comparison report."""
