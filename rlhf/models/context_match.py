"""A reward model that reads the context: GPT-2's sequence score plus a late-interaction relevance term.

A small GPT pretrained for two minutes has no attention head that finds a reply's words in the question
(a copying, or induction, head), and a thousand preference pairs do not grow one: it learns a reply's tone
and not whether it answers what was asked (docs/BENCHMARKS.md). This model adds to the score at the last
token, which :class:`~transformers.GPT2ForSequenceClassification` reads, the late-interaction ("MaxSim")
relevance of ColBERT (Khattab and Zaharia, 2020) between the reply and the last user turn:

    score = GPT-2 score + match_scale * Σ_t g_t max_c cos(P e_t, P e_c) / Σ_t g_t

over the reply's tokens t and the last user turn's tokens c, with ``e`` the backbone's token embeddings, ``P``
a learned square projection and ``g_t = idf_t · softplus(w · e_t + b)`` a per-token weight, so that words
like "the" or "I" count for little (a token in every text, for nothing). ``idf_t`` is fixed when the model is
made: the squared inverse document frequency of the token among the turns and replies of the training pairs
(:func:`token_weights`, scaled to at most 1; a token they never hold weighs 1), the prior of BM25 and ColBERT's
weighting; with preference-model pretraining, the comparisons' turns and replies, kept through fine-tuning.
The softplus factor is learned, and starts at 1. ``P`` starts as the identity, but a token matches itself with
cosine 1 under any ``P``: a reply word found in the question counts from the first step, words no training pair
held included.
Everything else is trained end to end by the same Bradley-Terry loss (TRL's ``RewardTrainer``).

The turns are found by the chat format's speaker cues (``User:``, ``Bot:``), whose token ids the config
stores. Only tokens that hold a letter or a digit take part: the cues, line breaks, spaces and punctuation
are in every exchange (a reply of nothing but a space or a "?" would otherwise match the question fully).
A row without a bot cue (text that is no exchange), a reply or a user turn with no such token gets no
relevance term.

``model_type: rlhf_gpt2_context_match``: importing this module registers it with ``transformers``' auto
classes, so ``AutoModelForSequenceClassification.from_pretrained(folder)`` loads a saved one. PPO's critic,
started from a reward-model folder, is read by TRL through ``transformer`` and ``score`` alone: it has no
relevance term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, GPT2Config, GPT2ForSequenceClassification

from rlhf.data.chat import BOT, USER

MODEL_TYPE = "rlhf_gpt2_context_match"
RELEVANCE_FAMILIES = ("gpt2", MODEL_TYPE)  # the model types context_match_from builds on
# Bump when the term computes something else, so reward models (and pretrained backbones) made by the old code
# are trained again rather than reused. 2: tokens without a letter or digit (spaces, punctuation) never match.
# 3: each reply token's weight starts at its squared inverse document frequency in the training pairs.
# 4: those frequencies counted on the turns as the chat format spaces them (a turn's first word included).
VERSION = 4
IDF_POWER = 2  # the idf's exponent: context set 0.830 (none) → 0.847 (1) → 0.869 (2) → 0.858 (3) (BENCHMARKS, round 7)
_GATE_BIAS = math.log(math.e - 1)  # softplus(_GATE_BIAS) = 1: every reply token weighs the same at the start
# The relevance term's weight is stored divided by this. Adam's steps are about the learning rate in size
# whatever the gradient, and the weight must travel from ~1 to ~10 (or to ~0) in a hundred steps where the
# backbone's weights move by ~0.1: so it moves _SCALE_STEP times faster than they do.
_SCALE_STEP = 100.0


class ContextMatchConfig(GPT2Config):
    """GPT-2's config plus the token ids of the chat format's cues and the relevance term's starting scale."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        bot_cue_ids: list[int] | None = None,
        user_cue_ids: list[int] | None = None,
        ignored_ids: list[int] | None = None,
        match_scale: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.bot_cue_ids = list(bot_cue_ids or [])
        self.user_cue_ids = list(user_cue_ids or [])
        self.ignored_ids = list(ignored_ids or [])
        self.match_scale = match_scale


def cue_ids(tokenizer) -> dict[str, list[int]]:
    """The token ids of ``Bot:`` and ``User:`` as the chat format renders them after a line break, and of the
    tokens that never count as words: the cues' own, the special tokens, and every token whose text holds no
    letter or digit (spaces, line breaks, punctuation)."""

    def suffix(prefix: str, text: str) -> list[int]:
        head = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        full = tokenizer(prefix + text, add_special_tokens=False)["input_ids"]
        if full[: len(head)] != head or len(full) == len(head):
            raise ValueError(f"the tokenizer does not keep {text!r} apart from the text before it")
        return full[len(head) :]

    bot, user = suffix("hello", f"\n{BOT}:"), suffix("hello", f"\n{USER}:")
    wordless = {i for i in range(len(tokenizer)) if not any(c.isalnum() for c in tokenizer.decode([i]))}
    ignored = set(bot) | set(user) | set(tokenizer.all_special_ids) | wordless
    return {"bot_cue_ids": bot, "user_cue_ids": user, "ignored_ids": sorted(ignored)}


def _last_start(ids: torch.Tensor, pattern: list[int], before: torch.Tensor | None = None) -> torch.Tensor:
    """Per row, where the last occurrence of ``pattern`` starts (before column ``before`` when given), or -1."""
    batch, length = ids.shape
    if not pattern or length < len(pattern):
        return torch.full((batch,), -1, device=ids.device)
    windows = ids.unfold(1, len(pattern), 1)  # (B, T - L + 1, L)
    hits = (windows == torch.tensor(pattern, device=ids.device)).all(-1)
    columns = torch.arange(hits.shape[1], device=ids.device)
    if before is not None:
        hits &= columns[None, :] + len(pattern) <= before[:, None]
    return torch.where(hits, columns, torch.full_like(columns, -1)).max(-1).values


class ContextMatchForSequenceClassification(GPT2ForSequenceClassification):
    """GPT-2's one-output sequence classifier with the relevance term of the module docstring added."""

    config_class = ContextMatchConfig

    def __init__(self, config: ContextMatchConfig) -> None:
        super().__init__(config)
        self.match_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.match_gate = nn.Linear(config.n_embd, 1)
        self.match_weight = nn.Parameter(torch.empty(()))
        self.register_buffer("match_idf", torch.ones(config.vocab_size))  # idf_t: fixed, saved with the model
        self._init_match()

    def _init_match(self) -> None:
        with torch.no_grad():
            self.match_proj.weight.copy_(torch.eye(self.config.n_embd))
            self.match_gate.weight.zero_()
            self.match_gate.bias.fill_(_GATE_BIAS)
            self.match_weight.fill_(float(self.config.match_scale) / _SCALE_STEP)

    def _init_weights(self, module) -> None:
        # from_pretrained on a plain GPT-2 folder initialises the layers it does not find: these start as above.
        if module is getattr(self, "match_gate", None) or module is getattr(self, "match_proj", None):
            self._init_match()
            return
        if module is self and hasattr(self, "match_idf"):  # a model saved before version 3 has no token weights
            with torch.no_grad():
                self.match_idf.fill_(1.0)
        super()._init_weights(module)

    def set_token_weights(self, weights: torch.Tensor) -> None:
        """Fix ``idf_t`` (one weight per token id, as :func:`token_weights` returns; ids past the tokenizer's, in
        a larger embedding, weigh 1)."""
        size = len(self.match_idf)
        if weights.ndim != 1 or len(weights) > size:
            raise ValueError(f"{tuple(weights.shape)} token weights for an embedding of {size} tokens")
        self.match_idf.fill_(1.0)
        self.match_idf[: len(weights)] = weights.to(self.match_idf)

    def relevance(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per row, the gated mean over reply tokens of their best cosine match in the last user turn (0 to 1;
        0 for a row with no bot cue, or no word token in the reply or the user turn)."""
        config = self.config
        columns = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        bot = _last_start(input_ids, config.bot_cue_ids)
        user = _last_start(input_ids, config.user_cue_ids, before=bot.clamp(min=0))
        # Left truncation can cut the user cue away: the turn then runs from the first token.
        user_end = torch.where(user >= 0, user + len(config.user_cue_ids), torch.zeros_like(user))
        words = ~torch.isin(input_ids, torch.tensor(config.ignored_ids, device=input_ids.device, dtype=input_ids.dtype))
        if attention_mask is not None:
            words &= attention_mask.bool()
        has_bot = (bot >= 0)[:, None]
        in_reply = words & has_bot & (columns >= (bot + len(config.bot_cue_ids))[:, None])
        in_turn = words & has_bot & (columns >= user_end[:, None]) & (columns < bot[:, None])

        embedded = self.transformer.wte(input_ids)
        projected = F.normalize(self.match_proj(embedded), dim=-1)
        cosine = projected @ projected.transpose(1, 2)  # (B, reply position, turn position)
        cosine = cosine.masked_fill(~in_turn[:, None, :], -1.0)
        best = cosine.max(-1).values.clamp(min=0.0)  # no turn token: -1, clamped to 0
        gate = self.match_idf[input_ids] * F.softplus(self.match_gate(embedded)).squeeze(-1) * in_reply
        both = in_turn.any(-1) & in_reply.any(-1)
        return torch.where(both, (gate * best).sum(-1) / gate.sum(-1).clamp(min=1e-6), torch.zeros_like(best[:, 0]))

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if input_ids is None:
            raise ValueError(f"{type(self).__name__} reads the reply and the question from input_ids")
        if labels is not None:  # GPT-2's loss would be of the score without the term
            raise ValueError(f"{type(self).__name__} trains on preference pairs (TRL's RewardTrainer), not labels")
        kwargs["return_dict"] = True
        output = super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        relevance = self.relevance(input_ids, attention_mask).to(output.logits.dtype)
        output.logits = output.logits + self.match_scale.to(output.logits.dtype) * relevance[:, None]
        return output

    @property
    def match_scale(self) -> torch.Tensor:
        """The relevance term's weight (``match_weight`` × :data:`_SCALE_STEP`)."""
        return self.match_weight * _SCALE_STEP


def base_family(base: str) -> str:
    """The ``model_type`` of the model folder or name ``base``."""
    return AutoConfig.from_pretrained(base).model_type


def token_weights(tokenizer, texts: Sequence[str], power: float = IDF_POWER) -> torch.Tensor:
    """One weight per token id: ``log((N + 1) / (n_t + 1))`` over the ``N`` distinct ``texts`` (turns and replies,
    spelled as the model reads them: after a cue, with a leading space), ``n_t`` of them holding token ``t``,
    divided by its largest value (that of a token none holds) and raised to ``power``."""
    documents = list(dict.fromkeys(texts))
    if not documents:
        return torch.ones(len(tokenizer))
    holding = torch.zeros(len(tokenizer))  # n_t
    for ids in tokenizer(documents, add_special_tokens=False)["input_ids"]:
        holding[sorted(set(ids))] += 1
    idf = torch.log((len(documents) + 1) / (holding + 1))
    return (idf / idf.max()) ** power


def context_match_from(base: str, tokenizer, match_scale: float = 1.0) -> ContextMatchForSequenceClassification:
    """A :class:`ContextMatchForSequenceClassification` with the weights of the GPT-2 folder or name ``base``
    (a causal LM or a sequence classifier) and a fresh score head and relevance term (token weights all 1 until
    :meth:`~ContextMatchForSequenceClassification.set_token_weights`); ``tokenizer`` gives the cue ids. A ``base``
    that has the term already (a preference-pretrained backbone) loads as it was saved, head, term, token weights
    and cue ids included. Raises ``ValueError`` for a base that is no GPT-2."""
    config = AutoConfig.from_pretrained(base)
    if config.model_type == MODEL_TYPE:
        return ContextMatchForSequenceClassification.from_pretrained(base, num_labels=1)
    if config.model_type not in RELEVANCE_FAMILIES:
        raise ValueError(
            f"context_match needs a GPT-2 base model, {base!r} is {config.model_type!r}: set context_match: false"
        )
    dropped = ("model_type", "architectures", "id2label", "label2id")  # num_labels=1 makes its own labels
    settings = {k: v for k, v in config.to_dict().items() if k not in dropped}
    settings.update(num_labels=1, match_scale=match_scale, **cue_ids(tokenizer))
    return ContextMatchForSequenceClassification.from_pretrained(base, config=ContextMatchConfig(**settings))


AutoConfig.register(MODEL_TYPE, ContextMatchConfig)
AutoModelForSequenceClassification.register(ContextMatchConfig, ContextMatchForSequenceClassification)
