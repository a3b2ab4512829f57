"""A learned reward model as a reward: a one-output sequence classifier scoring rendered exchanges."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlhf.data.chat import render_exchange
from rlhf.models.policy import context_window, resolve_device
from rlhf.rewards.base import Context, RewardFunction


class RewardModelScorer(RewardFunction):
    """A learned reward model: an ``AutoModelForSequenceClassification`` folder with one output.

    Loaded once; scores batches of rendered exchanges (:func:`rlhf.data.chat.render_exchange`), on CUDA
    in bf16 when there is a GPU.
    """

    name = "reward_model"

    def __init__(self, path: str | Path, device: str | None = "auto", batch_size: int = 64, max_length: int = 256):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        import rlhf.models.context_match  # noqa: F401  (registers the reward model that reads the context)

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise FileNotFoundError(f"no reward model at {self.path}: expected a folder with config.json")
        self.device = str(resolve_device(device or "auto"))  # "auto", as every config's device field says
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModelForSequenceClassification.from_pretrained(self.path, dtype=dtype)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{self.path}: a reward model has one output, this one has {self.model.config.num_labels}")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        # Never longer than the model's position table (a policy-sized RM has 128 positions), nor than the
        # length it was trained at, which rlhf.training.reward_model saves as the tokenizer's model_max_length.
        limits = [
            max_length,
            context_window(self.model) or 0,
            self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1e9 else 0,  # huge means unset
        ]
        self.max_length = min(n for n in limits if n)

    def score(self, contexts: Sequence[Context], replies: Sequence[str]) -> np.ndarray:
        import torch

        texts = [render_exchange(c, r) for c, r in zip(contexts, replies, strict=True)]
        scores = np.zeros(len(texts))
        # Batches of similar length waste little on padding; the end of a long exchange is kept, since
        # the reply is what is being scored.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self.tokenizer.truncation_side = "left"
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in rows],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                ).to(self.device)
                scores[rows] = self.model(**enc).logits[:, 0].float().cpu().numpy()
        return scores
