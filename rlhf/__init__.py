"""rlhf-gym: reinforcement learning from feedback on dialogue.

The package is laid out as the data flows:

* ``rlhf.data``: the chat format, the corpus, prompt sources, preference records, the user simulator;
* ``rlhf.models``: the GPT policy (the offline default, or any causal LM) and its generation;
* ``rlhf.rewards``: the reward protocol, gold scorers, learned reward models, the labeller, TRL's adapter;
* ``rlhf.envs``: the Gymnasium dialogue environments (the repository's ``envs/`` folder);
* ``rlhf.training``: one module per algorithm (reward model, PPO, tabular Q-learning, DQN);
* ``rlhf.runs``: run records, the shared evaluation and the comparison report;
* ``rlhf.pipeline``: the one-command job.

Importing the package registers the ``rlhf/`` environment ids with Gymnasium, so
``gymnasium.make("rlhf:rlhf/Dialogue-v0")`` works with no import of ours beforehand.
"""

from rlhf.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()
