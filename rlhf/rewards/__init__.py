"""Rewards: the protocol every reward implements, gold scorers, learned reward models, the labeller, TRL's adapter."""
