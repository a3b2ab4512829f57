"""``rlhf/DialogueSelect-v0``: the bot picks one of K candidate replies, for DQN and tabular Q-learning.

The candidates of a context are its recorded continuation plus K-1 other corpus bot turns, shuffled
by a RNG seeded with the env's ``seed`` and the context, so the same seed always gives the same
candidates. The reward is the one of :class:`~rlhf.envs.dialogue.DialogueEnv` on the chosen text, cached
per (transcript, reply) because rewards are deterministic.

Observations: ``"features"`` is a ``Box`` of hashed bag-of-words vectors, one for the context and one
per candidate (a Q-network has to see what action k means); ``"index"`` is ``Discrete`` over
:attr:`DialogueSelectEnv.contexts`, every context an episode can reach. Multi-turn episodes move
along the recorded dialogue: the chosen candidate becomes the bot turn, the simulator answers, and the
next state is the dialogue's next context (so a prompt with no recorded continuation is one turn).
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import numpy as np
from gymnasium import spaces
from rlhf.envs.dialogue import DialogueEnv

from rlhf.data.chat import words
from rlhf.data.corpus import DialogueContext, bot_turns

OBSERVATIONS = ("features", "index")


def hashed_features(text: str, dim: int) -> np.ndarray:
    """Bag of words of ``text`` hashed into ``dim`` buckets (crc32, stable across runs), L2-normalised, float32."""
    vec = np.zeros(dim, dtype=np.float32)
    for w in words(text):
        vec[zlib.crc32(w.encode()) % dim] += 1.0
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


def dialogue_chain(start: DialogueContext) -> list[DialogueContext]:
    """``start`` and every context after it in its recorded dialogue (just ``start`` when none is recorded)."""
    chain = [start]
    if not start.continuation:
        return chain
    full = (*start.turns, start.continuation, *start.rest)
    for k in range(len(start.turns) + 2, len(full) + 1, 2):  # each later user turn ends a context
        chain.append(
            DialogueContext(
                turns=full[:k],
                continuation=full[k] if k < len(full) else "",
                rest=full[k + 1 :],
                dialogue_id=start.dialogue_id,
            )
        )
    return chain


class DialogueSelectEnv(DialogueEnv):
    """Choose one of ``num_candidates`` replies to a dialogue; the reward scores the chosen reply.

    Takes :class:`~rlhf.envs.dialogue.DialogueEnv`'s arguments (but ``max_reply_chars``) and:

    Args:
        num_candidates: K, the number of replies to choose from (the action space is ``Discrete(K)``).
        observation: ``"features"`` (``Box`` of shape ``((K+1)*feature_dim,)``) or ``"index"`` (``Discrete``).
        feature_dim: hashed bag-of-words buckets per text.
        num_contexts: keep only the first N prompts (a small table for tabular Q-learning).
    """

    def __init__(
        self,
        reward: Any = "default",
        reward_model: Any = None,
        gold: Any = "default",
        prompts: Any = None,
        split: str = "train",
        heldout_fraction: float = 0.1,
        seed: int = 0,
        max_turns: int = 1,
        simulator: Any = "corpus",
        num_candidates: int = 8,
        observation: str = "features",
        feature_dim: int = 64,
        num_contexts: int | None = None,
        max_context_chars: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            reward=reward,
            reward_model=reward_model,
            gold=gold,
            prompts=prompts,
            split=split,
            heldout_fraction=heldout_fraction,
            seed=seed,
            max_turns=max_turns,
            simulator=simulator,
            max_context_chars=max_context_chars,
            render_mode=render_mode,
        )
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        self.pool = bot_turns()
        if not isinstance(num_candidates, (int, np.integer)) or not 2 <= num_candidates < len(self.pool):
            raise ValueError(f"num_candidates must be an integer in [2, {len(self.pool)}), got {num_candidates!r}")
        if not isinstance(feature_dim, (int, np.integer)) or feature_dim < 1:
            raise ValueError(f"feature_dim must be a positive integer, got {feature_dim!r}")
        if num_contexts is not None:
            if not isinstance(num_contexts, (int, np.integer)) or num_contexts < 1:
                raise ValueError(f"num_contexts must be a positive integer or None, got {num_contexts!r}")
            self.contexts = self.contexts[:num_contexts]
        self.num_candidates = int(num_candidates)
        self.observation_mode = observation
        self.feature_dim = int(feature_dim)

        # Every context an episode can reach, dialogue by dialogue; _next_index links each to the one after it.
        starts, self.contexts, self.start_indices, self._next_index = self.contexts, [], [], []
        for start in starts:
            chain = dialogue_chain(start)
            self.start_indices.append(len(self.contexts))
            for j, context in enumerate(chain):
                self.contexts.append(context)
                self._next_index.append(len(self.contexts) if j + 1 < len(chain) else None)

        self.action_space = spaces.Discrete(self.num_candidates)
        if observation == "index":
            self.observation_space = spaces.Discrete(len(self.contexts))
        else:
            size = (self.num_candidates + 1) * self.feature_dim
            self.observation_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
        self._candidates: dict[int, list[str]] = {}
        self._candidate_features: dict[int, np.ndarray] = {}
        self._text_features: dict[str, np.ndarray] = {}
        self._scores: dict[tuple[tuple[str, ...], str], tuple[float, dict[str, float], float | None]] = {}

    def candidates_for(self, context: DialogueContext) -> list[str]:
        """The K candidate replies of ``context``: its continuation (when recorded) and other corpus bot
        turns, in an order fixed by the env's ``seed`` and the context."""
        rng = random.Random(f"{self.seed}\x1f{chr(31).join(context.turns)}\x1f{context.continuation}")
        others = [t for t in rng.sample(self.pool, self.num_candidates + 1) if t != context.continuation]
        chosen = [context.continuation] if context.continuation else []
        chosen += others[: self.num_candidates - len(chosen)]
        rng.shuffle(chosen)
        return chosen

    @property
    def candidates(self) -> list[str]:
        """The candidate replies of the current context; action k picks ``candidates[k]``."""
        if self._index < 0:
            raise RuntimeError("no candidates before reset(): call env.reset() first")
        return self._candidates_at(self._index)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Reply with candidate ``action`` (an int in ``[0, num_candidates)``)."""
        self._check_running()
        if not isinstance(action, (int, np.integer)) or isinstance(action, bool):
            if isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer):
                action = int(action)  # SB3 and vector envs hand over 0-d arrays
            else:
                raise TypeError(f"action must be an int candidate index, got {type(action).__name__}: {action!r:.60}")
        if not 0 <= action < self.num_candidates:
            raise ValueError(f"action {action} is out of range: choose a candidate in [0, {self.num_candidates})")
        return self._advance(self.candidates[int(action)])

    def _candidates_at(self, index: int) -> list[str]:
        if index not in self._candidates:
            self._candidates[index] = self.candidates_for(self.contexts[index])
        return self._candidates[index]

    def _features_of(self, text: str) -> np.ndarray:
        if text not in self._text_features:
            self._text_features[text] = hashed_features(text, self.feature_dim)
        return self._text_features[text]

    def prefill_scores(self) -> int:
        """Score every candidate of every context an episode can reach, in one batch; returns the pair count.

        A reward model scores a batch of 64 pairs in the time of ~10 single ones, and a Q-learner asks
        for one pair per step. One-turn episodes only visit the start contexts.
        """
        indices = self.start_indices if self.max_turns == 1 else range(len(self.contexts))
        keys = [(self.contexts[i].turns, c) for i in indices for c in self._candidates_at(i)]
        keys = [k for k in dict.fromkeys(keys) if k not in self._scores]
        if keys:
            contexts, replies = [t for t, _ in keys], [r for _, r in keys]
            scores, parts = self.reward_fn.score_with_parts(contexts, replies)
            gold = self.score_gold(contexts, replies)
            for n, key in enumerate(keys):
                self._scores[key] = (
                    float(scores[n]),
                    {name: float(part[n]) for name, part in parts.items()},
                    None if gold is None else float(gold[n]),
                )
        return len(keys)

    def _score(self, turns: tuple[str, ...], reply: str) -> tuple[float, dict[str, float], float | None]:
        key = (turns, reply)
        if key not in self._scores:
            self._scores[key] = super()._score(turns, reply)
        reward, parts, gold = self._scores[key]
        return reward, dict(parts), gold  # a copy: a caller editing info["reward_parts"] must not edit the cache

    def _user_turn(self, turns: tuple[str, ...]) -> str | None:
        if self._next_index[self._index] is None:  # the recorded dialogue ends here
            return None
        return super()._user_turn(turns)

    def _enter_next_context(self) -> None:
        self._index = self._next_index[self._index]

    def _observation(self) -> Any:
        if self.observation_mode == "index":
            return self._index
        if self._index not in self._candidate_features:
            self._candidate_features[self._index] = np.concatenate(
                [self._features_of(c) for c in self._candidates_at(self._index)]
            )
        context = hashed_features(" ".join(self._turns), self.feature_dim)
        return np.concatenate([context, self._candidate_features[self._index]])
