"""Does the offline default speak? Build (or reuse) a policy and measure its held-out replies.

    python scripts/bench_policy.py --config configs/policy/default.yaml [--field value ...] \
        [--temperatures 1.0,0.7] [--contexts 64] [--policy_dir FOLDER]

``--policy_dir`` measures a policy folder built before (say, under an older recipe) instead.

Prints the build time, held-out token perplexity and word perplexity (per word of the held-out text,
comparable across tokenizers), then for each sampling temperature ``eval/word_rate`` and distinct-n of
2 sampled replies for each of the first ``--contexts`` held-out corpus contexts, and a few replies.
"""

import math
import sys
import time

from rlhf.config import load_config
from rlhf.data.chat import words
from rlhf.data.corpus import corpus_contexts, load_dialogues, split_dialogues
from rlhf.models.policy import (
    PolicyConfig,
    encode_dialogues,
    ensure_policy,
    generate_replies,
    load_policy,
    perplexity,
)
from rlhf.runs.evaluation import corpus_vocabulary, distinct_n, word_rate


def _pop(args: list[str], flag: str, default: str) -> str:
    if flag in args:
        i = args.index(flag)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return default


if __name__ == "__main__":
    args = sys.argv[1:]
    temperatures = [float(t) for t in _pop(args, "--temperatures", "1.0,0.7").split(",")]
    n_contexts = int(_pop(args, "--contexts", "64"))
    policy_dir = _pop(args, "--policy_dir", "")
    config_path = _pop(args, "--config", "configs/policy/default.yaml")
    config = load_config(PolicyConfig, config_path, args)

    started = time.time()
    if not policy_dir:
        report = ensure_policy(config)
        policy_dir = report.path
        print(f"policy {policy_dir} ({'reused' if report.reused else f'built in {report.train_seconds:.0f}s'})")
    model, tokenizer = load_policy(policy_dir, device=config.device)

    dialogues = load_dialogues()
    heldout = [dialogues[i] for i in split_dialogues(config.heldout_fraction, config.seed)[1]]
    ids = encode_dialogues(tokenizer, heldout, model.config.n_positions)
    token_ppl = perplexity(model, ids, tokenizer.pad_token_id)
    tokens = sum(len(s) - 1 for s in ids)
    # Count the words of the predicted text only (after the leading eos, up to any cut; the closing eos
    # counts as one word), so the count is the same whichever tokenizer reads the text.
    n_words = sum(len(words(tokenizer.decode(s[1:], skip_special_tokens=False))) for s in ids)
    word_ppl = math.exp(math.log(token_ppl) * tokens / n_words)
    print(f"held-out: token perplexity {token_ppl:.2f} on {tokens} tokens; word perplexity {word_ppl:.2f} on {n_words}")

    contexts = [c.turns for c in corpus_contexts("heldout", config.heldout_fraction, config.seed)[:n_contexts]]
    vocabulary = corpus_vocabulary(config.heldout_fraction, config.seed)
    for temperature in temperatures:
        replies = [r for rs in generate_replies(model, tokenizer, contexts, 2, 24, temperature, seed=0) for r in rs]
        print(
            f"temperature {temperature}: word_rate {word_rate(replies, vocabulary):.3f}  "
            f"distinct_1 {distinct_n(replies, 1):.3f}  distinct_2 {distinct_n(replies, 2):.3f}  "
            f"mean words {sum(len(words(r)) for r in replies) / len(replies):.1f}"
        )
        for context, reply in list(zip([c for c in contexts for _ in range(2)], replies, strict=True))[:12:2]:
            print(f"    User: {context[-1]}\n    Bot:  {reply}")
    print(f"total {time.time() - started:.0f}s")
