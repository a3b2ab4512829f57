"""Reward scoring in one batch versus one ``env.step`` per reply, for a gold reward and a reward model.

    python scripts/bench_reward_batching.py [--n 256] [--policy FOLDER] [--reward_model FOLDER] [--device cpu]
                                            [--threads 1]

Scores ``n`` (context, reply) pairs of the corpus through ``DialogueEnv.score_replies`` in one batch,
then through ``n`` single ``env.step`` calls (each after a ``reset`` to that context, not timed), checks
that both give the same rewards, and prints the times and their ratio. Without ``--reward_model`` the
reward model is the policy with a fresh one-output head (``AutoModelForSequenceClassification``): its
scores are meaningless but it costs what a trained one costs.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rlhf.envs.dialogue import DialogueEnv

from rlhf.config import parse_script_args
from rlhf.models.policy import DEFAULT_POLICY, PolicyConfig, ensure_policy
from rlhf.rewards.reward_model import RewardModelScorer


@dataclass
class BenchConfig:
    """What to benchmark: ``n`` pairs, the policy a reward model is built from, or a reward model."""

    n: int = 256
    policy: str = DEFAULT_POLICY  # a causal-LM folder, or "default": the offline policy (built or reused)
    reward_model: str = ""  # a reward-model folder; empty: build one from the policy
    cache_dir: str = "artifacts/cache"
    device: str = "cpu"
    repeats: int = 3  # the batch is timed this many times, the best kept
    threads: int = 0  # torch CPU threads; 0 keeps torch's default (1 is steadier on a shared machine)


def build_reward_model(policy: str, target: Path) -> Path:
    """The policy with a fresh one-output head, saved with its tokenizer to ``target``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(policy).save_pretrained(target)
    return target


def bench(name: str, env: DialogueEnv, contexts: list, replies: list[str], repeats: int) -> dict[str, float]:
    """Time one batch against ``len(replies)`` steps; raise if their rewards differ."""
    turns = [c.turns for c in contexts]
    env.score_replies(turns[:8], replies[:8])  # warm-up: lazy imports, first kernels
    batch_s = []
    for _ in range(repeats):
        start = time.perf_counter()
        batch = env.score_replies(turns, replies)
        batch_s.append(time.perf_counter() - start)
    stepped, step_s = [], 0.0
    for context, reply in zip(contexts, replies, strict=True):
        env.reset(options={"context_index": env.contexts.index(context)})
        start = time.perf_counter()
        stepped.append(env.step(reply)[1])
        step_s += time.perf_counter() - start
    np.testing.assert_allclose(stepped, batch, rtol=1e-4, atol=1e-4, err_msg=f"{name}: step and batch rewards differ")
    row = {"batch_s": min(batch_s), "steps_s": step_s, "ratio": step_s / min(batch_s)}
    print(
        f"{name:<14} {len(replies)} pairs: one batch {row['batch_s'] * 1e3:8.1f} ms | "
        f"{len(replies)} steps {row['steps_s'] * 1e3:8.1f} ms | steps / batch = {row['ratio']:.1f}x"
    )
    return row


def main() -> None:
    config = parse_script_args(BenchConfig)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    env = DialogueEnv(reward="default", gold=None, simulator=None, max_reply_chars=4000)
    contexts = [env.contexts[i % len(env.contexts)] for i in range(config.n)]
    replies = [c.continuation for c in contexts]  # real corpus replies (some over 280 characters)
    print(f"{config.n} corpus (context, reply) pairs, device {config.device}")
    bench("gold:default", env, contexts, replies, config.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        folder = config.reward_model
        if not folder:
            policy = config.policy
            if policy == DEFAULT_POLICY:
                policy = ensure_policy(PolicyConfig(cache_dir=config.cache_dir, device=config.device)).path
            folder = build_reward_model(policy, Path(tmp) / "reward_model")
        scorer = RewardModelScorer(folder, device=config.device)
        rm_env = DialogueEnv(reward=scorer, gold=None, simulator=None, max_reply_chars=4000)
        params = sum(p.numel() for p in scorer.model.parameters())
        print(f"reward model: {folder} ({params / 1e6:.2f} M parameters, batch size {scorer.batch_size})")
        bench("reward_model", rm_env, contexts, replies, config.repeats)


if __name__ == "__main__":
    main()
