"""The toolkit's one chat format.

A dialogue is a sequence of turns that alternate between the user and the bot, the user first:

    User: Good morning, how are you?
    Bot: I am doing well, how about you?

Every component renders text through this module: policy pretraining and prompts, reward-model
inputs, environment observations and preference files. A bot reply is a single line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

USER = "User"
BOT = "Bot"
SPEAKERS = (USER, BOT)
_SPEAKER_CUE = re.compile(f"(?:{USER}|{BOT}):")
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``: what the gold scorers, metrics and features count."""
    return _WORD.findall(text.lower())


def speaker_of(index: int) -> str:
    """Speaker of the turn at ``index`` in a dialogue that starts with the user."""
    return SPEAKERS[index % 2]


def clean_turn(text: str) -> str:
    """One turn on one line: newlines and runs of whitespace become single spaces."""
    return " ".join(str(text).split())


def render_dialogue(turns: Sequence[str]) -> str:
    """Render alternating turns (user first), one per line, each line ending in a newline."""
    return "".join(f"{speaker_of(i)}: {clean_turn(t)}\n" for i, t in enumerate(turns))


def render_prompt(context: Sequence[str]) -> str:
    """Render a context that ends on a user turn, followed by the bot's cue for the next reply."""
    if len(context) % 2 != 1:
        raise ValueError(f"a prompt context must end on a user turn (an odd number of turns), got {len(context)} turns")
    return render_dialogue(context) + f"{BOT}:"


def render_exchange(context: Sequence[str], reply: str) -> str:
    """Render a context and the bot's reply to it: the text a reward model scores."""
    return render_prompt(context) + f" {clean_turn(reply)}\n"


def parse_reply(generated: str) -> str:
    """The bot's reply inside text generated after a prompt: up to the first line break or speaker cue, stripped.

    A policy often runs on into the next ``User:`` line; that is not part of its reply. A cue without
    the line break (``"Fine.Bot: Fine.Bot: …"``) ends the reply too: otherwise PPO learns to pad its
    one turn with fake turns that a length-loving reward pays for.
    """
    line = generated.split("\n", 1)[0]
    cue = _SPEAKER_CUE.search(line)
    return (line[: cue.start()] if cue else line).strip()


def parse_dialogue(text: str) -> list[str]:
    """Inverse of :func:`render_dialogue`: the turns of a rendered dialogue.

    Raises ``ValueError`` naming the line whose speaker is not the one expected.
    """
    turns = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        expected = speaker_of(len(turns))
        prefix = f"{expected}:"
        if not line.startswith(prefix):
            raise ValueError(f"line {number}: expected a turn starting with {prefix!r}, got {line[:40]!r}")
        turns.append(line[len(prefix) :].strip())
    return turns


HH_HUMAN = "\n\nHuman:"
HH_ASSISTANT = "\n\nAssistant:"


def split_hh_transcript(transcript: str) -> tuple[list[str], str]:
    """Split an Anthropic hh-rlhf transcript into (context turns, final assistant reply).

    hh-rlhf rows hold whole transcripts (``\\n\\nHuman: … \\n\\nAssistant: …``) whose prompt is implicit:
    everything before the last assistant turn.
    """
    text = transcript if transcript.startswith("\n\n") else "\n\n" + transcript.lstrip("\n")
    turns: list[tuple[str, str]] = []
    rest = text
    while rest:
        if rest.startswith(HH_HUMAN):
            speaker, rest = USER, rest[len(HH_HUMAN) :]
        elif rest.startswith(HH_ASSISTANT):
            speaker, rest = BOT, rest[len(HH_ASSISTANT) :]
        else:
            raise ValueError(f"not an hh-rlhf transcript: expected 'Human:' or 'Assistant:' at {rest[:40]!r}")
        cut = min((i for i in (rest.find(HH_HUMAN), rest.find(HH_ASSISTANT)) if i >= 0), default=len(rest))
        turns.append((speaker, clean_turn(rest[:cut])))
        rest = rest[cut:]
    merged: list[tuple[str, str]] = []
    for speaker, t in turns:  # consecutive turns of one speaker read as one turn
        if merged and merged[-1][0] == speaker:
            merged[-1] = (speaker, f"{merged[-1][1]} {t}".strip())
        else:
            merged.append((speaker, t))
    if not merged or merged[0][0] != USER or merged[-1][0] != BOT:
        raise ValueError("an hh-rlhf transcript must start with a Human turn and end with an Assistant turn")
    texts = [t for _, t in merged]
    return texts[:-1], texts[-1]
