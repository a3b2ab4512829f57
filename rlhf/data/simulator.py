"""The user simulator: what the user says after the bot's reply, so an episode can run several turns.

The default follows the real dialogue: after the bot's n-th reply the user says what the user of the
recorded dialogue said next, and the episode ends where that dialogue ends. A prompt with no recorded
continuation (a user's own prompt) is answered by retrieval instead: the corpus bot turn closest to the
reply (TF-IDF over words) and the user turn that followed it in its dialogue.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from rlhf.data.chat import words
from rlhf.data.corpus import DialogueContext, load_dialogues


class UserSimulator:
    """Base of every simulator: subclasses implement :meth:`respond`."""

    def respond(self, start: DialogueContext, turns: Sequence[str]) -> str | None:
        """The user's next turn after ``turns`` (which end on the bot's reply), or ``None`` when the user is done.

        ``start`` is the context the episode began from (its ``continuation`` and ``rest`` are the recorded dialogue).
        """
        raise NotImplementedError


class CorpusSimulator(UserSimulator):
    """Follows the recorded dialogue when there is one (``follow_dialogue``), else answers by retrieval."""

    def __init__(self, follow_dialogue: bool = True) -> None:
        self.follow_dialogue = follow_dialogue

    def respond(self, start: DialogueContext, turns: Sequence[str]) -> str | None:
        if self.follow_dialogue and start.continuation:
            replies_so_far = (len(turns) - len(start.turns) + 1) // 2
            i = 2 * (replies_so_far - 1)  # rest = user, bot, user, ...: the user turn after reply n is rest[2(n-1)]
            return start.rest[i] if 0 <= i < len(start.rest) else None
        return retrieval_index().answer(turns[-1])


class CallableSimulator(UserSimulator):
    """A user function ``fn(turns) -> str | None`` as a simulator (``turns`` end on the bot's reply)."""

    def __init__(self, fn: Callable[[Sequence[str]], str | None]) -> None:
        self.fn = fn

    def respond(self, start: DialogueContext, turns: Sequence[str]) -> str | None:
        answer = self.fn(list(turns))
        if answer is not None and not isinstance(answer, str):
            raise TypeError(f"user simulator {self.fn!r} returned {type(answer).__name__}, expected str or None")
        return answer


SIMULATORS = ("corpus", "retrieval", "none")


def resolve_simulator(spec: Any) -> UserSimulator | None:
    """A simulator from ``"corpus"`` (follow the real dialogue, else retrieve), ``"retrieval"`` (always
    retrieve), ``None`` or ``"none"`` (no simulator: one turn per episode), a :class:`UserSimulator` or a callable."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, UserSimulator):
        return spec
    if isinstance(spec, str):
        if spec not in SIMULATORS:
            raise ValueError(f"unknown simulator {spec!r}; expected one of {SIMULATORS}, None or a callable")
        return CorpusSimulator(follow_dialogue=spec == "corpus")
    if callable(spec):
        return CallableSimulator(spec)
    raise TypeError(f"cannot make a user simulator from {type(spec).__name__}")


class RetrievalIndex:
    """TF-IDF index over the corpus bot turns that a user turn follows, answering with that user turn."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        if not pairs:
            raise ValueError("a retrieval index needs at least one (bot turn, user turn) pair")
        self.pairs = list(pairs)
        docs = [Counter(words(bot)) for bot, _ in self.pairs]
        df = Counter(w for doc in docs for w in doc)
        self.idf = {w: math.log((len(docs) + 1) / (n + 1)) + 1.0 for w, n in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, doc in enumerate(docs):
            weights = {w: c * self.idf[w] for w, c in doc.items()}
            norm = math.sqrt(sum(v * v for v in weights.values())) or 1.0
            for w, v in weights.items():
                self.postings[w].append((i, v / norm))

    def nearest(self, text: str) -> int:
        """Index of the pair whose bot turn is most similar to ``text`` (cosine over TF-IDF; ties go to the first).

        A text sharing no word with any bot turn gets a pair chosen by a stable hash of the text.
        """
        query = Counter(w for w in words(text) if w in self.idf)
        if not query:
            return zlib.crc32(text.encode()) % len(self.pairs)
        scores: dict[int, float] = defaultdict(float)
        for w, c in query.items():
            for i, v in self.postings[w]:
                scores[i] += c * self.idf[w] * v
        return min(scores, key=lambda i: (-scores[i], i))

    def answer(self, reply: str) -> str:
        """The user turn that followed the corpus bot turn nearest to ``reply``."""
        return self.pairs[self.nearest(reply)][1]


@lru_cache(maxsize=1)
def retrieval_index() -> RetrievalIndex:
    """The index over every (bot turn, next user turn) pair of the corpus, built once (milliseconds)."""
    pairs = [(d[k], d[k + 1]) for d in load_dialogues() for k in range(1, len(d) - 1, 2)]
    return RetrievalIndex(pairs)
