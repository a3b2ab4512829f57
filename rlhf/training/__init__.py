"""Training: one module per algorithm (reward model, PPO, tabular Q-learning, DQN) and what the baselines share."""
