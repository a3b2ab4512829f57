"""The main job, ``rlhf-gym``: the whole chain on the offline default, each stage reused when done.

For now the chain is its first stage: build (or reuse) the default policy and show sample dialogues.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlhf.config import parse_script_args
from rlhf.corpus import corpus_contexts
from rlhf.policy import DEFAULT_POLICY, PolicyConfig, ensure_policy, generate_replies, load_policy


def policy_stage(config: PolicyConfig) -> str:
    """Build or reuse the policy, print its held-out perplexity and sample replies; return its folder."""
    path = config.policy
    if config.policy == DEFAULT_POLICY:
        report = ensure_policy(config)
        path = report.path
        state = "reused cached policy" if report.reused else f"built in {report.train_seconds:.0f}s"
        print(f"{state}: {path}")
        print(
            f"held-out perplexity {report.heldout_perplexity:.2f} "
            f"(unigram model: {report.unigram_perplexity:.2f}) on {report.heldout_tokens} tokens"
        )
    model, tokenizer = load_policy(path, device=config.device)
    contexts = corpus_contexts("heldout", config.heldout_fraction, config.seed)[: config.num_samples]
    replies = generate_replies(model, tokenizer, [c.turns for c in contexts], temperature=0.7, seed=config.seed)
    print("\nsample dialogues (held-out contexts):")
    for context, (reply,) in zip(contexts, replies, strict=True):
        print(f"  User: {context.turns[-1]}\n  Bot:  {reply}\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``rlhf-gym``."""
    policy_stage(parse_script_args(PolicyConfig, argv))


if __name__ == "__main__":
    main()
