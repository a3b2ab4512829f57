"""An environment's batched reward, shaped as the reward model TRL's ``PPOTrainer`` expects.

TRL scores a rollout with ``get_reward(model, query_responses, pad_token_id, context_length)``: it runs
``getattr(model, model.base_model_prefix)(input_ids=…, attention_mask=…, …)``, passes the last hidden
states through ``model.score`` and reads the value at each row's last non-pad token. :class:`EnvRewardModel`
fits that call without being a language model: its backbone decodes each row, splits it into the prompt
and the reply, scores the pairs through ``env.unwrapped.score_replies`` and returns hidden states of
shape ``(B, T, 1)`` filled with each row's score; ``score`` is the identity.

PPO always scores through it, also for a learned reward model with the policy's tokenizer: a reply is
then scored exactly as the environment (and so the evaluation) scores it — cut at its line break or
speaker cue (:func:`rlhf.data.chat.parse_reply`), cleaned, truncated to the reward model's length.

The reply a row holds is what TRL's loss covers: the response up to its first pad token (TRL's
``sequence_length``; the policy pads after a stop token) or end-of-sequence token. Anything after it is
never read, even where it is not a pad (a stray token after an EOS).

The backbone sees only the token ids, not ``context_length``, so it finds the prompt by lookup: every
prompt TRL can be given is encoded here once (:func:`encode_prompts`, the same encoding as the PPO
dataset) and stored in a token trie. In a batch, all prompts end at the same column (they are
left-padded), so the split is the rightmost column where every row's tokens before it form a known
prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from rlhf.data.chat import parse_reply, render_prompt

Turns = tuple[str, ...]
_END = -1  # trie key marking "a prompt ends here"


def encode_prompts(tokenizer, contexts: Sequence[Sequence[str]]) -> list[list[int]]:
    """Token ids of each context's prompt (:func:`rlhf.data.chat.render_prompt`), without special tokens."""
    texts = [render_prompt(turns) for turns in contexts]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def stop_token_ids(tokenizer, at_newline: bool = True) -> list[int]:
    """Tokens that end a reply: EOS, and with ``at_newline`` every token whose text holds a line break
    (a line break, two of them, a full stop and one…), since :func:`rlhf.data.chat.parse_reply` ends the reply there."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if at_newline:
        ids += [i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i]) and i not in ids]
    return ids


def read_reply(tokenizer, response: Sequence[int], visible: Sequence[bool], stop_ids) -> tuple[str, bool]:
    """The reply in one sampled response, and whether it ended before the length limit.

    The reply runs to the first pad (not ``visible``: TRL's ``sequence_length``) or EOS token, or through
    the first stop token, and is then cut by :func:`rlhf.data.chat.parse_reply`: what the env scores.
    """
    eos, tokens, ended = tokenizer.eos_token_id, [], False
    for token, seen in zip(response, visible, strict=True):
        if not seen or token == eos:
            ended = True
            break
        tokens.append(token)
        if token in stop_ids:
            ended = True
            break
    return parse_reply(tokenizer.decode(tokens, skip_special_tokens=True)), ended


def batched_reward_of(env: Any):
    """``env.unwrapped.score_replies``, or a ``TypeError`` naming the env when its reward cannot be batched."""
    score = getattr(getattr(env, "unwrapped", env), "score_replies", None)
    if not callable(score):
        name = getattr(getattr(env, "spec", None), "id", None) or type(getattr(env, "unwrapped", env)).__name__
        raise TypeError(
            f"environment {name!r} has no batched reward: PPO needs env.unwrapped.score_replies(contexts, replies) "
            "-> array (the rlhf/ dialogue environments have it)"
        )
    return score


class _PromptTrie:
    """Known prompts as a trie of token ids: the prompt lengths that prefix a row, in one walk."""

    def __init__(self, prompts: Sequence[Sequence[int]], contexts: Sequence[Turns]) -> None:
        self.root: dict = {}
        self.size = 0
        for ids, turns in zip(prompts, contexts, strict=True):
            node = self.root
            for token in ids:
                node = node.setdefault(int(token), {})
            if _END not in node:
                self.size += 1
            node[_END] = tuple(turns)

    def prefixes(self, ids: Sequence[int]) -> dict[int, Turns]:
        """``{length: context}`` for every known prompt that is a prefix of ``ids``."""
        found, node = {}, self.root
        for length, token in enumerate(ids):
            if _END in node:
                found[length] = node[_END]
            node = node.get(int(token))
            if node is None:
                return found
        if _END in node:
            found[len(ids)] = node[_END]
        return found


class _EnvRewardBackbone(nn.Module):
    """Decodes rows of (left-padded prompt, reply) ids and returns each row's env reward as a hidden state."""

    def __init__(
        self,
        score_replies,
        tokenizer,
        trie: _PromptTrie,
        stop_ids: Sequence[int] = (),
        missing_eos_penalty: float | None = None,
    ) -> None:
        super().__init__()
        self.score_replies = score_replies
        self.tokenizer = tokenizer
        self.trie = trie
        self.stop_ids = set(stop_ids)
        self.missing_eos_penalty = missing_eos_penalty
        self.last_complete: list[bool] = []  # per row of the last batch: did the reply end before the length limit

    def split(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[list[Turns], list[str]]:
        """(context, reply) of each row; raises ``ValueError`` naming a row whose prompt is unknown."""
        ids, mask = input_ids.tolist(), attention_mask.bool().tolist()
        starts = [row.index(True) if True in row else len(row) for row in mask]
        # Column at which each known prompt of each row ends; all rows' prompts end at one shared column.
        ends = [
            {start + n: turns for n, turns in self.trie.prefixes(row[start:]).items() if n > 0}
            for row, start in zip(ids, starts, strict=True)
        ]
        shared = set.intersection(*(set(e) for e in ends)) if ends else set()
        if not shared:
            bad = next((i for i, e in enumerate(ends) if not e), 0)
            text = self.tokenizer.decode([t for t, m in zip(ids[bad], mask[bad], strict=True) if m])
            raise ValueError(
                f"row {bad} of the batch does not start with any of the {self.trie.size} prompts this reward adapter "
                f"knows (or the rows' prompts do not end at one column): {text[:80]!r}"
            )
        column = max(shared)  # rightmost: a multi-turn prompt wins over a shorter known prompt inside it
        contexts, replies, complete = [], [], []
        for row, row_mask, row_ends in zip(ids, mask, ends, strict=True):
            reply, ended = read_reply(self.tokenizer, row[column:], row_mask[column:], self.stop_ids)
            contexts.append(row_ends[column])
            replies.append(reply)
            complete.append(ended)
        self.last_complete = complete
        return contexts, replies

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        contexts, replies = self.split(input_ids, attention_mask)
        scores = np.asarray(self.score_replies(contexts, replies), dtype=np.float32)
        if self.missing_eos_penalty is not None:  # TRL's missing_eos_penalty, on our notion of an ended reply
            scores = scores - self.missing_eos_penalty * ~np.asarray(self.last_complete, dtype=bool)
        values = torch.as_tensor(scores, device=input_ids.device).view(-1, 1, 1).expand(*input_ids.shape, 1)
        return BaseModelOutput(last_hidden_state=values, hidden_states=(values,))


class EnvRewardModel(nn.Module):
    """The reward of a batched environment as a TRL reward model (``base_model_prefix = "backbone"``).

    Args:
        env: an environment with ``env.unwrapped.score_replies(contexts, replies) -> array`` (``rlhf/`` envs).
        tokenizer: the policy's tokenizer, which encoded the prompts and decodes the replies.
        contexts: every context whose prompt TRL may pass (the training prompts), as turn sequences.
        stop_ids: tokens that end a reply (the line-break tokens the policy stops at); a reply ends too at
            a pad or EOS token. ``missing_eos_penalty`` is taken off the score of a reply that did not end
            before the response length (TRL's option of that name, which looks for EOS only).
        shift, scale: TRL gets ``(reward - shift) / scale`` (reward normalisation; the defaults leave it as is).
    """

    base_model_prefix = "backbone"

    def __init__(
        self,
        env: Any,
        tokenizer,
        contexts: Sequence[Sequence[str]],
        stop_ids: Sequence[int] = (),
        missing_eos_penalty: float | None = None,
        shift: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"the reward's scale must be > 0, got {scale}")
        turns = [tuple(c) for c in contexts]
        trie = _PromptTrie(encode_prompts(tokenizer, turns), turns)
        self.backbone = _EnvRewardBackbone(batched_reward_of(env), tokenizer, trie, stop_ids, missing_eos_penalty)
        self.shift, self.scale = float(shift), float(scale)

    def score(self, hidden: torch.Tensor) -> torch.Tensor:
        """The reward TRL optimises from the backbone's output: the env reward, shifted and scaled."""
        return (hidden - self.shift) / self.scale

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        """The backbone's output; ``score`` of its last hidden state is each row's reward."""
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
