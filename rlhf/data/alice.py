"""Question-and-answer pairs from A.L.I.C.E.'s AIML, as shipped by the ``aiml`` package (python-aiml).

chatterbot-corpus is small (about 2,000 dialogues, many of them tech-support exchanges, one 121 times
repeated), so a policy pretrained on it alone answers most questions with a tech-support line. ALICE's
AIML holds thousands more chit-chat exchanges ("DO YOU LIKE MOVIES" → "Yes, I love movies."). Only the
plain ones are kept: a pattern without wildcards or a ``<that>`` condition, and a template of plain text
(no ``<srai>`` redirection, no variables). The yes/no files (``mp*.aiml``, about 48,000 one-word
answers from Mindpixel) are left out.

These pairs join the default policy's pretraining text when ``pretrain_alice: true`` (the
default). Prompts, held-out contexts, candidate replies and the user simulator stay chatterbot-corpus's,
and a pair whose question has the text of any chatterbot-corpus turn is dropped, so no held-out context
is ever pretrained on.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from rlhf.data.chat import words

MAX_REPLY_WORDS = 30
_QUESTION_WORDS = frozenset(
    "what who whom whose where when why how which is are am was were do does did can could would will shall "
    "should may might have has had".split()
)
_WILDCARDS = re.compile(r"[*_#^$]")
_PRONOUN_I = re.compile(r"\bi\b")


def alice_dir() -> Path:
    """Folder of ALICE's AIML files inside the installed ``aiml`` package (found without importing it)."""
    spec = find_spec("aiml")
    if spec is None or not spec.origin:
        raise RuntimeError("pretrain_alice needs the aiml package, a dependency of rlhf-gym: pip install aiml")
    folder = Path(spec.origin).parent / "botdata" / "alice"
    if not folder.is_dir():
        raise RuntimeError(f"no AIML files under {folder}: is the aiml package installed intact?")
    return folder


def as_question(pattern: str) -> str:
    """An AIML pattern (``"ARE YOU A ROBOT"``) as a user turn: ``"Are you a robot?"``."""
    text = _PRONOUN_I.sub("I", " ".join(pattern.lower().split()))
    text = text[:1].upper() + text[1:]
    first = words(text)[:1]
    return text + "?" if first and first[0] in _QUESTION_WORDS else text


def plain_pairs(path: Path) -> list[tuple[str, str]]:
    """``(pattern, reply)`` of every plain category in one AIML file (see the module's docstring)."""
    pairs = []
    for category in ET.parse(path).getroot().iter("category"):
        pattern, template = category.find("pattern"), category.find("template")
        if pattern is None or template is None or category.find("that") is not None:
            continue
        if len(pattern) or _WILDCARDS.search(pattern.text or ""):
            continue
        if any(child.tag != "br" for child in template.iter() if child is not template):
            continue
        reply = " ".join(" ".join(template.itertext()).split())  # a <br/> becomes a space
        if reply and len(reply.split()) <= MAX_REPLY_WORDS:
            pairs.append((pattern.text.strip(), reply))
    return pairs


@lru_cache(maxsize=1)
def alice_dialogues(exclude_keys: frozenset[str] = frozenset()) -> tuple[tuple[str, str], ...]:
    """ALICE's plain pairs as two-turn dialogues, in file order, one per distinct question.

    A pair whose question's normalised words are in ``exclude_keys`` is dropped (pass the corpus's turns,
    lower-cased words joined by spaces, to keep held-out contexts out).
    """
    seen: set[str] = set()
    out = []
    for path in sorted(alice_dir().glob("*.aiml")):
        if path.name.startswith("mp"):
            continue
        for pattern, reply in plain_pairs(path):
            question = as_question(pattern)
            key = " ".join(words(question))
            if key and key not in seen and key not in exclude_keys:
                seen.add(key)
                out.append((question, reply))
    if not out:
        raise RuntimeError(f"no plain AIML pairs found under {alice_dir()}")
    return tuple(out)


def alice_fingerprint(dialogues: tuple[tuple[str, str], ...]) -> str:
    """A short hash of ``dialogues``' text: the policy's cache is keyed on it."""
    h = hashlib.sha256()
    for turns in dialogues:
        h.update("\x00".join(turns).encode() + b"\x01")
    return h.hexdigest()[:12]
