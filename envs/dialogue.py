"""``rlhf/Dialogue-v0``: the bot replies in free text to a dialogue and is rewarded for its reply.

Observation: the dialogue so far rendered with :func:`rlhf.data.chat.render_prompt` (``"User: …\\nBot:"``).
Action: the reply text. Reward: the reward function on (context, reply), through the same batched
path as :meth:`DialogueEnv.score_replies`.

Episodes follow Gymnasium's meaning of the two flags. With ``max_turns=1`` (the default) the task is one
reply: the episode ends ``terminated`` after it, and nothing is left to bootstrap. With ``max_turns > 1`` a
user simulator answers each reply and the episode goes on; it is ``terminated`` when the user has nothing
more to say (the recorded dialogue ended) and ``truncated`` only when ``max_turns`` cuts a dialogue the
user would have gone on with (a time limit: the future still has a value).
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rlhf.data.chat import clean_turn, render_dialogue, render_prompt
from rlhf.data.corpus import DialogueContext, turns_of
from rlhf.data.prompts import load_prompts
from rlhf.data.simulator import resolve_simulator
from rlhf.rewards.base import RewardFunction, score_checked
from rlhf.rewards.resolve import resolve_reward
from rlhf.rewards.reward_model import RewardModelScorer

# Letters, digits, ASCII punctuation, space and newline: the corpus after to_charset lies in it.
DIALOGUE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " \n"
# A reply is one line (see rlhf.data.chat), so no newline.
REPLY_CHARSET = DIALOGUE_CHARSET[:-1]
_ASCII_FOR = str.maketrans({**dict(zip("‘’‚“”„–—─│├└\t\r", "'''\"\"\"---||`  ", strict=True)), "…": "..."})


class ReplySpace(spaces.Text):
    """The replies ``step`` accepts: 1 to ``max_length`` characters of ``charset``, at least one of them visible.

    ``spaces.Text`` alone samples strings such as ``"   "``, which ``step`` refuses (an empty reply), so
    ``sample()`` here swaps one character of an all-blank draw for a visible one and ``contains`` agrees.
    """

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random reply with at least one visible character (Gymnasium's ``Text.sample`` arguments)."""
        text = super().sample(mask=mask, probability=probability)
        if text.strip() or mask is not None or probability is not None:
            return text  # a mask or probability that allows only blanks is the caller's choice
        visible = [c for c in self.character_list if not c.isspace()]
        position = int(self.np_random.integers(len(text)))
        return text[:position] + str(self.np_random.choice(visible)) + text[position + 1 :]

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is a reply ``step`` accepts."""
        return super().contains(x) and bool(x.strip())


def to_charset(text: str, charset: str = DIALOGUE_CHARSET) -> str:
    """``text`` mapped into ``charset``: typographic quotes and dashes to ASCII, accents dropped, the rest ``?``."""
    allowed = set(charset)
    text = unicodedata.normalize("NFKD", text.translate(_ASCII_FOR))
    return "".join(c if c in allowed else "?" for c in text if not unicodedata.combining(c))


class DialogueEnv(gymnasium.Env[str, str]):
    """Reply to a dialogue in free text; the reward scores the reply in its context.

    Args:
        reward: a gold scorer name (``"default"``, ``"sentiment:0.7,quality:0.3"``), a callable
            ``fn(contexts, replies) -> array``, a :class:`~rlhf.rewards.base.RewardFunction` or a reward-model folder.
        reward_model: a reward-model folder; when given it replaces ``reward``.
        gold: the gold scorer reported as ``info["gold_reward"]`` beside the reward; ``None`` for none.
        prompts: the prompt source (see :func:`rlhf.data.prompts.load_prompts`); ``None`` is the corpus.
        split, heldout_fraction, seed: which prompts (``"train"``, ``"heldout"`` or ``"all"``) and how they are split.
        max_turns: bot replies per episode; 1 is a one-reply task (``terminated`` after it), above 1 the
            ``simulator`` answers each reply and ``max_turns`` is a time limit (``truncated``).
        simulator: ``"corpus"``, ``"retrieval"``, ``"none"``, a ``UserSimulator`` or a callable.
        max_reply_chars: the longest reply accepted.
        max_context_chars: the longest observation; longer dialogues keep their end.
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the transcript).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        reward: Any = "default",
        reward_model: str | Path | None = None,
        gold: Any = "default",
        prompts: Any = None,
        split: str = "train",
        heldout_fraction: float = 0.1,
        seed: int = 0,
        max_turns: int = 1,
        simulator: Any = "corpus",
        max_reply_chars: int = 280,
        max_context_chars: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        for field, value, least in (
            ("max_turns", max_turns, 1),
            ("max_reply_chars", max_reply_chars, 1),
            ("max_context_chars", max_context_chars, 16),
        ):
            if not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{field} must be an integer >= {least}, got {value!r}")
        self.reward_fn: RewardFunction = (
            RewardModelScorer(reward_model) if reward_model is not None else resolve_reward(reward)
        )
        self.gold_fn: RewardFunction | None = None if gold is None else resolve_reward(gold)
        self.contexts: list[DialogueContext] = load_prompts(prompts, split, heldout_fraction, seed)
        self.simulator = resolve_simulator(simulator)
        if max_turns > 1 and self.simulator is None:
            raise ValueError(f"max_turns={max_turns} needs a user simulator to answer the bot; got simulator=None")
        # Kept so that a held-out copy of this env (same source, other split) can be built: see held_out_contexts.
        self.prompt_source = prompts
        self.split = split
        self.heldout_fraction = heldout_fraction
        self.seed = seed
        self.max_turns = int(max_turns)
        self.max_reply_chars = int(max_reply_chars)
        self.max_context_chars = int(max_context_chars)
        self.render_mode = render_mode
        self.observation_space = spaces.Text(max_length=self.max_context_chars, charset=DIALOGUE_CHARSET)
        self.action_space = ReplySpace(max_length=self.max_reply_chars, charset=REPLY_CHARSET)
        # Indices in self.contexts an episode starts from (the select env adds later contexts after them).
        self.start_indices: list[int] = list(range(len(self.contexts)))
        self._index = -1  # index in self.contexts of the context the bot replies to next
        self._start: DialogueContext | None = None
        self._turns: tuple[str, ...] = ()
        self._replies = 0
        self._done = True

    # -- the reward, batched: PPO, the evaluation and step all score through here --------------------------

    def score_replies(self, contexts: Sequence[Sequence[str] | DialogueContext], replies: Sequence[str]) -> np.ndarray:
        """The reward of each (context, reply) pair, shape ``(n,)``; contexts are turn sequences (or contexts)."""
        return score_checked(self.reward_fn, [turns_of(c) for c in contexts], list(replies))

    def score_gold(self, contexts: Sequence[Sequence[str] | DialogueContext], replies: Sequence[str]):
        """The gold reward of each pair, shape ``(n,)``, or ``None`` when the env has no gold scorer."""
        if self.gold_fn is None:
            return None
        return score_checked(self.gold_fn, [turns_of(c) for c in contexts], list(replies))

    # -- the Gymnasium API ------------------------------------------------------------------------------

    @property
    def turns(self) -> tuple[str, ...]:
        """The transcript of the current episode (user first)."""
        return self._turns

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start a dialogue: a seeded draw from the start contexts, or ``options={"context_index": i}``."""
        super().reset(seed=seed)
        options = options or {}
        if "context_index" in options:
            index = options["context_index"]
            if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.contexts):
                raise ValueError(f"options['context_index'] must be in [0, {len(self.contexts)}), got {index!r}")
            index = int(index)
        else:
            index = self.start_indices[int(self.np_random.integers(len(self.start_indices)))]
        self._index = index
        self._start = self.contexts[index]
        self._turns = self._start.turns
        self._replies = 0
        self._done = False
        return self._observation(), {"context_index": index, "dialogue_id": self._start.dialogue_id}

    def step(self, action: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Score the reply ``action``; the simulator answers when the episode goes on."""
        self._check_running()
        return self._advance(self._check_reply(action))

    def render(self) -> str | None:
        """The transcript so far (``render_mode="ansi"``)."""
        if self.render_mode == "ansi":
            return render_dialogue(self._turns)
        return None

    # -- the episode, shared with DialogueSelectEnv -----------------------------------------------------

    def _check_running(self) -> None:
        if self._start is None:
            raise RuntimeError("step() called before reset(): call env.reset() to start an episode")
        if self._done:
            raise RuntimeError("step() called after the episode ended (terminated or truncated): call env.reset()")

    def _check_reply(self, action: Any) -> str:
        if not isinstance(action, str):
            raise TypeError(f"action must be the reply text (str), got {type(action).__name__}: {action!r:.60}")
        if len(action) > self.max_reply_chars:
            raise ValueError(f"reply is {len(action)} characters long; max_reply_chars is {self.max_reply_chars}")
        reply = clean_turn(action)
        if not reply:
            raise ValueError(f"reply is empty or only whitespace ({action!r}): a reply needs a visible character")
        return reply

    def _score(self, turns: tuple[str, ...], reply: str) -> tuple[float, dict[str, float], float | None]:
        scores, parts = self.reward_fn.score_with_parts([turns], [reply])
        gold = self.score_gold([turns], [reply])
        return float(scores[0]), {k: float(v[0]) for k, v in parts.items()}, None if gold is None else float(gold[0])

    def _user_turn(self, turns: tuple[str, ...]) -> str | None:
        """The simulator's answer to ``turns`` (ending on the bot's reply), or ``None`` when the dialogue ends."""
        if self.simulator is None or self.max_turns == 1:  # a one-reply task never asks the user
            return None
        answer = self.simulator.respond(self._start, turns)
        return clean_turn(answer) if answer is not None else None

    def _enter_next_context(self) -> None:
        """Hook: the user answered and the episode moves to the next context (DialogueEnv keeps its start index)."""

    def _advance(self, reply: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        acted = self._index
        reward, parts, gold = self._score(self._turns, reply)
        self._turns = (*self._turns, reply)
        self._replies += 1
        # One-reply tasks end terminated (no user turn is asked for); a longer dialogue is truncated only
        # when the turn limit cuts it while the user still has something to say.
        user = self._user_turn(self._turns)
        terminated = not user
        truncated = not terminated and self._replies >= self.max_turns
        if user:
            self._turns = (*self._turns, user)
            self._enter_next_context()
        self._done = terminated or truncated
        info: dict[str, Any] = {
            "reply": reply,
            "user_turn": user or None,
            "turn": self._replies,
            "context_index": acted,
            "dialogue_id": self._start.dialogue_id,
            "reward_parts": parts,
        }
        if gold is not None:
            info["gold_reward"] = gold
        return self._observation(), reward, terminated, truncated, info

    def _observation_text(self) -> str:
        """The transcript in the observation charset, ending with ``Bot:`` while the bot is to speak.

        Longer than ``max_context_chars``: the start is cut at a line break, so the last turns are kept.
        """
        turns = self._turns
        text = to_charset(render_prompt(turns) if len(turns) % 2 == 1 else render_dialogue(turns))
        if len(text) > self.max_context_chars:
            text = text[-self.max_context_chars :]
            cut = text.find("\n")
            if 0 <= cut < len(text) - 5:
                text = text[cut + 1 :]
        return text

    def _observation(self) -> Any:
        return self._observation_text()
