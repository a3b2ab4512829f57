"""An environment's batched reward, shaped as the reward model TRL's ``PPOTrainer`` expects.

TRL scores a rollout with ``get_reward(model, query_responses, pad_token_id, context_length)``: it runs
``getattr(model, model.base_model_prefix)(input_ids=…, attention_mask=…, …)``, passes the last hidden
states through ``model.score`` and reads the value at each row's last non-pad token. :class:`EnvRewardModel`
fits that call without being a language model: its backbone decodes each row, splits it into the prompt
and the reply, scores the pairs through ``env.unwrapped.score_replies`` and returns hidden states of
shape ``(B, T, 1)`` filled with each row's score; ``score`` is the identity.

The backbone sees only the token ids, not ``context_length``, so it finds the prompt by lookup: every
prompt TRL can be given is encoded here once (:func:`encode_prompts`, the same encoding as the PPO
dataset) and stored in a token trie. In a batch, all prompts end at the same column (they are
left-padded), so the split is the rightmost column where every row's tokens before it form a known
prompt. The reply is decoded and cut at its first line break (:func:`rlhf.data.chat.parse_reply`): a
reply is one line, whatever the policy wrote after it is not scored.
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

    def __init__(self, score_replies, tokenizer, trie: _PromptTrie) -> None:
        super().__init__()
        self.score_replies = score_replies
        self.tokenizer = tokenizer
        self.trie = trie

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
        contexts, replies = [], []
        for row, row_mask, row_ends in zip(ids, mask, ends, strict=True):
            response = [t for t, m in zip(row[column:], row_mask[column:], strict=True) if m]
            contexts.append(row_ends[column])
            replies.append(parse_reply(self.tokenizer.decode(response, skip_special_tokens=True)))
        return contexts, replies

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        contexts, replies = self.split(input_ids, attention_mask)
        scores = np.asarray(self.score_replies(contexts, replies), dtype=np.float32)
        values = torch.as_tensor(scores, device=input_ids.device).view(-1, 1, 1).expand(*input_ids.shape, 1)
        return BaseModelOutput(last_hidden_state=values, hidden_states=(values,))


class EnvRewardModel(nn.Module):
    """The reward of a batched environment as a TRL reward model (``base_model_prefix = "backbone"``).

    Args:
        env: an environment with ``env.unwrapped.score_replies(contexts, replies) -> array`` (``rlhf/`` envs).
        tokenizer: the policy's tokenizer, which encoded the prompts and decodes the replies.
        contexts: every context whose prompt TRL may pass (the training prompts), as turn sequences.
    """

    base_model_prefix = "backbone"

    def __init__(self, env: Any, tokenizer, contexts: Sequence[Sequence[str]]) -> None:
        super().__init__()
        turns = [tuple(c) for c in contexts]
        trie = _PromptTrie(encode_prompts(tokenizer, turns), turns)
        self.backbone = _EnvRewardBackbone(batched_reward_of(env), tokenizer, trie)
        self.score = nn.Identity()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        """The backbone's output; ``score`` of its last hidden state is each row's reward."""
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
