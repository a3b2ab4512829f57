"""Does the offline default speak, and on the subject? Build (or reuse) a policy and measure its held-out replies.

    python scripts/bench_policy.py --config configs/policy/default.yaml [--field value ...] \
        [--recipe round1] [--temperatures 1.0,0.7] [--contexts 0] [--policy_dir FOLDER]

``--recipe round1`` builds round 1's recipe with today's code and split (byte-level BPE 2,048, every
corpus dialogue as often as the corpus repeats it, 6 epochs); fields given after it still win.
``--policy_dir`` measures a policy folder built before instead.

Prints the build time; held-out token and word perplexity (NLL over the words of the held-out text,
comparable across tokenizers) on every held-out dialogue (the corpus repeats some: one of them makes
half the held-out side) and on each distinct held-out dialogue once; then for each sampling temperature,
over 2 sampled replies to each of the first ``--contexts`` held-out contexts (0: all), ``eval/word_rate``,
distinct-n, the gold ``relevance`` scorer (share of reply content words in the user's turn), the same
share against the corpus's own reply to that context ("answer overlap"), the share of reply content
words found in the training dialogues of the context's own corpus file ("on topic": a tech-support
line to a trivia question scores low), and a few replies. Last, the "context gain" on 75 held-out and 75
training contexts drawn at random: how much likelier the corpus's own reply is after its own context than after
three others drawn at random (nats a reply; 0 for a policy that ignores what was asked).
"""

import math
import random
import sys
import time

import numpy as np
import torch

from rlhf.config import load_config
from rlhf.data.chat import render_exchange, render_prompt, words
from rlhf.data.corpus import corpus_contexts, dialogue_ids, load_dialogues, split_dialogues
from rlhf.models.policy import (
    PolicyConfig,
    context_window,
    encode_dialogues,
    ensure_policy,
    generate_replies,
    load_policy,
    perplexity,
)
from rlhf.rewards.gold import _STOPWORDS, relevance
from rlhf.runs.evaluation import corpus_vocabulary, distinct_n, word_rate
from rlhf.training.policy_eval import token_logprobs

# Round 1's default (RECIPE_VERSION 1-2): what "held-out perplexity no worse" compares against.
RECIPES = {"round1": ["--tokenizer", "bpe", "--vocab_size", "2048", "--epochs", "6", "--max_repeats", "0"]}


def _pop(args: list[str], flag: str, default: str) -> str:
    if flag in args:
        i = args.index(flag)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return default


def word_perplexity(model, tokenizer, dialogues) -> tuple[float, float, int]:
    """(token perplexity, word perplexity, words) of ``model`` on ``dialogues``, each cut to the context window."""
    ids = encode_dialogues(tokenizer, dialogues, context_window(model))
    token_ppl = perplexity(model, ids, tokenizer.pad_token_id)
    tokens = sum(len(s) - 1 for s in ids)
    # Count the words of the predicted text only (after the leading eos, up to any cut; the closing eos
    # counts as one word), so the count is the same whichever tokenizer reads the text.
    n_words = sum(len(words(tokenizer.decode(s[1:], skip_special_tokens=False))) for s in ids)
    return token_ppl, math.exp(math.log(token_ppl) * tokens / n_words), n_words


@torch.no_grad()
def context_gain(model, tokenizer, contexts, others: int = 3, seed: int = 0) -> tuple[float, float, float, int]:
    """(mean gain in nats a reply, share of replies with a gain, mean NLL of a reply after its own context, pairs
    measured): how much likelier each context's corpus reply is after its own context than after ``others`` other
    contexts drawn at random. Pairs longer than the window are skipped."""
    model.eval()
    device = next(model.parameters()).device
    window = context_window(model) or 1024
    rng = random.Random(seed)

    def reply_nll(turns, reply):
        prompt = tokenizer(render_prompt(turns), add_special_tokens=False)["input_ids"]
        ids = tokenizer(render_exchange(turns, reply), add_special_tokens=False)["input_ids"]
        if len(ids) > window:
            return None
        batch = torch.tensor([ids], device=device)
        logp = token_logprobs(model, batch, torch.ones_like(batch), temperature=1.0)[0]
        return -logp[len(prompt) - 1 :].sum().item()

    gains, owns = [], []
    for i, c in enumerate(contexts):
        own = reply_nll(c.turns, c.continuation)
        drawn = rng.sample([j for j in range(len(contexts)) if j != i], others)
        after = [reply_nll(contexts[j].turns, c.continuation) for j in drawn]
        if own is not None and None not in after:
            gains.append(sum(after) / others - own)
            owns.append(own)
    if not gains:
        return math.nan, math.nan, math.nan, 0
    return float(np.mean(gains)), float(np.mean([g > 0 for g in gains])), float(np.mean(owns)), len(gains)


def topic_vocabularies(train: list[int]) -> dict[str, set[str]]:
    """``{corpus file: content words of its training dialogues}``: which words belong to which subject."""
    vocab: dict[str, set[str]] = {}
    for i in train:
        topic = dialogue_ids()[i].split("/")[0]
        vocab.setdefault(topic, set()).update(w for t in load_dialogues()[i] for w in words(t) if w not in _STOPWORDS)
    return vocab


def on_topic(reply: str, topic_words: set[str]) -> float:
    """Share of the reply's content words found in its context's subject (0 when it has none)."""
    said = [w for w in words(reply) if w not in _STOPWORDS]
    return sum(w in topic_words for w in said) / len(said) if said else 0.0


if __name__ == "__main__":
    args = sys.argv[1:]
    if {"-h", "--help"} & set(args):
        print(__doc__)
        sys.exit(0)
    temperatures = [float(t) for t in _pop(args, "--temperatures", "1.0,0.7").split(",")]
    n_contexts = int(_pop(args, "--contexts", "0"))
    policy_dir = _pop(args, "--policy_dir", "")
    config_path = _pop(args, "--config", "configs/policy/default.yaml")
    recipe = _pop(args, "--recipe", "")
    if recipe:
        if recipe not in RECIPES:
            raise SystemExit(f"--recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
        args = RECIPES[recipe] + args
    config = load_config(PolicyConfig, config_path, args)

    started = time.time()
    if not policy_dir:
        report = ensure_policy(config)
        policy_dir = report.path
        print(f"policy {policy_dir} ({'reused' if report.reused else f'built in {report.train_seconds:.0f}s'})")
    model, tokenizer = load_policy(policy_dir, device=config.device)

    dialogues = load_dialogues()
    train_idx, heldout_idx = split_dialogues(config.heldout_fraction, config.seed)
    heldout = [dialogues[i] for i in heldout_idx]
    for name, chosen in (("every held-out dialogue", heldout), ("distinct held-out dialogues", sorted(set(heldout)))):
        token_ppl, word_ppl, n_words = word_perplexity(model, tokenizer, chosen)
        print(
            f"{name} ({len(chosen)}): token perplexity {token_ppl:.2f}, "
            f"word perplexity {word_ppl:.2f} ({n_words} words)"
        )

    held = corpus_contexts("heldout", config.heldout_fraction, config.seed)
    held = held[:n_contexts] if n_contexts else held
    contexts = [c.turns for c in held for _ in range(2)]
    answers = [(c.continuation,) for c in held for _ in range(2)]
    vocabulary = corpus_vocabulary(config.heldout_fraction, config.seed, alice=config.pretrain_alice)
    topics = topic_vocabularies(train_idx)
    subjects = [topics.get(c.dialogue_id.split("/")[0], set()) for c in held for _ in range(2)]
    print(
        f"{len(held)} held-out contexts; the corpus's own replies: relevance "
        f"{np.mean([relevance(c.turns, c.continuation) for c in held]):.3f}, on topic "
        f"{np.mean([on_topic(a[0], s) for a, s in zip(answers, subjects, strict=True)]):.3f}"
    )
    for temperature in temperatures:
        sampled = generate_replies(model, tokenizer, contexts[::2], 2, 24, temperature, seed=0)
        replies = [r for rs in sampled for r in rs]
        print(
            f"temperature {temperature}: word_rate {word_rate(replies, vocabulary):.3f}  "
            f"distinct_1 {distinct_n(replies, 1):.3f}  distinct_2 {distinct_n(replies, 2):.3f}  "
            f"relevance {np.mean([relevance(c, r) for c, r in zip(contexts, replies, strict=True)]):.3f}  "
            f"answer overlap {np.mean([relevance(a, r) for a, r in zip(answers, replies, strict=True)]):.3f}  "
            f"on topic {np.mean([on_topic(r, s) for r, s in zip(replies, subjects, strict=True)]):.3f}  "
            f"mean words {sum(len(words(r)) for r in replies) / len(replies):.1f}"
        )
        for context, reply in list(zip(contexts, replies, strict=True))[:16:2]:
            print(f"    User: {context[-1]}\n    Bot:  {reply}")
    for side in ("heldout", "train"):
        with_reply = [c for c in corpus_contexts(side, config.heldout_fraction, config.seed) if c.continuation]
        random.Random(0).shuffle(with_reply)  # the corpus lists its files one after another: 75 across topics
        with_reply = with_reply[:75]
        gain, share, own, n = context_gain(model, tokenizer, with_reply)
        print(
            f"context gain, {side} contexts: {gain:.2f} nats a reply (of {own:.1f} after its own context), "
            f"own context likelier for {share:.0%} of {n}"
        )
    print(f"total {time.time() - started:.0f}s")
