"""Talk to a trained policy in the terminal, or to two side by side (``rlhf-gym chat``).

Each line you type is a user turn; the policy replies in the toolkit's chat format (:mod:`rlhf.data.chat`),
with the whole dialogue so far as its context. With ``against``, a second policy (the one before RLHF,
say) answers the same turns in a column beside the first, each keeping its own side of the dialogue, and
each reply shows its learned reward (``reward_model``) and gold score (``gold``). ``/reset`` starts a new
dialogue, ``/quit`` or end of input ends the session.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rlhf.errors import UserError

QUIT, RESET = "/quit", "/reset"


@dataclass
class ChatConfig:
    """Whom to talk to and how they sample."""

    policy: str = ""  # the policy to talk to: a folder (a PPO run's final/, a policy cache folder) or a model name
    against: str | None = None  # a second policy answering the same turns beside the first (e.g. before RLHF)
    reward_model: str | None = None  # a reward-model folder: each reply's learned reward is shown
    gold: str | None = "default"  # the gold scorer shown beside each reply; None: no gold score
    max_new_tokens: int = 32
    temperature: float = 0.5  # 0: greedy; PPO's default temperature, at which the small default policy is fluent
    seed: int = 0  # each turn samples with seed + turn number, so a session replays the same
    device: str = "auto"
    width: int = 0  # columns of the side-by-side view; 0: the terminal's width


@dataclass
class Speaker:
    """One policy in the conversation, with its own side of the dialogue."""

    name: str
    model: object
    tokenizer: object
    history: list[str]


def _load(path: str, device: str) -> Speaker:
    from rlhf.models.policy import load_policy

    if not path:
        raise UserError("chat: --policy is required (a policy folder such as artifacts/runs/default/ppo/final)")
    try:
        model, tokenizer = load_policy(path, device=device)
    except ValueError as exc:
        raise UserError(f"chat: {exc}") from None
    short = "/".join(Path(path).parts[-2:]) if Path(path).exists() else path
    return Speaker(short, model, tokenizer, [])


def side_by_side(columns: list[list[str]], width: int) -> list[str]:
    """Text columns of equal width, wrapped and padded, separated by `` │ ``."""
    if len(columns) == 1:
        return [line for block in columns[0] for line in textwrap.wrap(block, width) or [""]]
    inner = max(20, (width - 3 * (len(columns) - 1)) // len(columns))
    wrapped = [[line for block in col for line in textwrap.wrap(block, inner) or [""]] for col in columns]
    rows = max(len(w) for w in wrapped)
    return [" │ ".join((w[i] if i < len(w) else "").ljust(inner) for w in wrapped).rstrip() for i in range(rows)]


def chat(config: ChatConfig, input_stream: IO[str] | None = None, output_stream: IO[str] | None = None) -> int:
    """Run a chat session on ``input_stream`` (stdin) and ``output_stream`` (stdout); returns the turns answered."""
    from rlhf.models.policy import generate_replies
    from rlhf.rewards.resolve import resolve_reward

    stdin, stdout = input_stream or sys.stdin, output_stream or sys.stdout
    speakers = [_load(config.policy, config.device)]
    if config.against:
        speakers.append(_load(config.against, config.device))
    scorers = []
    if config.reward_model:
        from rlhf.rewards.reward_model import RewardModelScorer

        scorers.append(("reward", RewardModelScorer(config.reward_model, device=config.device)))
    if config.gold:
        scorers.append(("gold", resolve_reward(config.gold)))
    width = config.width or shutil.get_terminal_size((100, 24)).columns
    paths = [config.policy, *([config.against] if config.against else [])]
    stdout.write("".join(f"[{i}] {path}\n" for i, path in enumerate(paths, start=1)))
    stdout.write(f"{RESET} starts over, {QUIT} or end of input ends\n")
    echo = not (hasattr(stdin, "isatty") and stdin.isatty())  # piped turns: show them, so the transcript reads
    turns = 0
    while True:
        stdout.write("you> ")
        stdout.flush()
        try:
            line = stdin.readline()
        except KeyboardInterrupt:
            line = ""
        if not line or line.strip() == QUIT:
            break
        text = " ".join(line.split())
        if echo:
            stdout.write(f"{text}\n")
        if not text:
            continue
        if text == RESET:
            for speaker in speakers:
                speaker.history = []
            stdout.write("(new dialogue)\n")
            continue
        columns = []
        for number, speaker in enumerate(speakers, start=1):
            context = [*speaker.history, text]
            (reply,) = generate_replies(
                speaker.model,
                speaker.tokenizer,
                [context],
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                seed=config.seed + turns,
            )[0]
            speaker.history = [*context, reply]
            scores = ", ".join(f"{name} {float(fn([context], [reply])[0]):+.3f}" for name, fn in scorers)
            columns.append([f"[{number}] {speaker.name}", f"Bot: {reply}", *([f"[{scores}]"] if scores else [])])
        stdout.write("\n".join(side_by_side(columns, width)) + "\n")
        turns += 1
    stdout.write(f"\n{turns} turns\n")
    return turns
