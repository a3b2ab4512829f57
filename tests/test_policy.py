import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from tokenizers.pre_tokenizers import ByteLevel

from rlhf.data.chat import render_dialogue
from rlhf.data.corpus import load_dialogues
from rlhf.models.policy import (
    EOS,
    PAD,
    PolicyConfig,
    byte_spellings,
    cap_repeats,
    default_policy_dir,
    ensure_policy,
    generate_replies,
    load_policy,
    mask_spelling,
    pack_blocks,
    spell_some,
    spelling_escapes,
    train_tokenizer,
)
from rlhf.runs.fingerprint import FINGERPRINT_FILE, artefact_fingerprint


def test_tiny_policy_beats_a_unigram_model(tiny_policy):
    assert tiny_policy.heldout_tokens > 1000
    # Held-out dialogues share no opening with training ones (split by text), so they are new text: the tiny
    # model lands near 0.55 of the unigram perplexity there, one that ignores context near 1.
    assert tiny_policy.heldout_perplexity < 0.75 * tiny_policy.unigram_perplexity


def test_second_call_reuses_the_cache(tiny_policy, tiny_policy_config):
    weights = os.path.join(tiny_policy.path, "model.safetensors")
    before = os.path.getmtime(weights)
    again = ensure_policy(tiny_policy_config)
    assert again.reused and again.path == tiny_policy.path
    assert os.path.getmtime(weights) == before
    with open(os.path.join(tiny_policy.path, "policy_report.json")) as f:
        assert json.load(f)["reused"] is False


def test_a_built_policy_is_keyed_on_its_content_so_a_copy_is_the_same_input(tmp_path):
    """The built default policy writes its content fingerprint (later stages key labels and runs on it), so a
    copied cache (``cp -r``: new modification times) is not relabelled and retrained. A one-epoch micro build."""
    config = PolicyConfig(cache_dir=str(tmp_path / "cache"), tokenizer="bpe", vocab_size=300, n_layer=1, n_head=1,
                          n_embd=16, epochs=1, batch_size=32, pretrain_alice=False, device="cpu")  # fmt: skip
    built = Path(ensure_policy(config).path)
    assert (built / FINGERPRINT_FILE).is_file()
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, copy_function=shutil.copy)
    for file in copy.iterdir():
        os.utime(file, ns=(10**18, 10**18))
    assert artefact_fingerprint(copy) == artefact_fingerprint(built)


def test_cache_key_changes_with_the_architecture(tiny_policy_config):
    other = PolicyConfig(**{**tiny_policy_config.__dict__, "n_layer": 3})
    assert default_policy_dir(other) != default_policy_dir(tiny_policy_config)


def test_policy_loads_by_path_and_generates_one_line_replies(tiny_policy):
    model, tokenizer = load_policy(tiny_policy.path, device="cpu")
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id != tokenizer.eos_token_id
    contexts = [["Hello"], ["How are you?"]]
    replies = generate_replies(model, tokenizer, contexts, num_samples=3, max_new_tokens=12, seed=0)
    assert [len(r) for r in replies] == [3, 3]
    assert all("\n" not in r for rs in replies for r in rs)
    again = generate_replies(model, tokenizer, contexts, num_samples=3, max_new_tokens=12, seed=0)
    assert again == replies


def test_unknown_model_name_is_named(tmp_path):
    with pytest.raises(ValueError, match="no-such-model-xyz"):
        load_policy(str(tmp_path / "no-such-model-xyz"), device="cpu")


def test_unwritable_cache_dir_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match=str(blocker)):
        ensure_policy(PolicyConfig(cache_dir=str(blocker / "cache"), vocab_size=300, n_layer=1, n_embd=32, epochs=1))


def test_pack_blocks_joins_dialogues_with_one_eos():
    blocks = pack_blocks([[0, 5, 6, 0], [0, 7, 0], [0, 8, 9, 0]], block_size=4)
    assert blocks.tolist() == [[0, 5, 6, 0], [7, 0, 8, 9]]
    assert blocks.dtype == torch.long


def test_word_tokenizer_holds_whole_corpus_words_and_spells_the_rest_exactly():
    texts = [render_dialogue(d) for d in load_dialogues()[:300]]
    tokenizer = train_tokenizer(texts, 600, kind="word")
    split = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    whole_words = {piece for t in texts for piece, _ in split(t)}  # " hello", "?", "'s": never part of a word
    byte_symbols = set(ByteLevel.alphabet())  # what a word outside the vocabulary is spelled in
    tokens = set(tokenizer.get_vocab()) - {EOS, PAD}
    # A BPE vocabulary holds fragments ("iltt") that sampling strings into non-words; this one holds none.
    assert len(tokens) == 600 - 2 and tokens <= whole_words | byte_symbols
    assert all(tokenizer.decode(tokenizer(t)["input_ids"]) == t for t in texts)
    # Words it has not kept are spelled in bytes, so any prompt or reply survives encode/decode.
    novel = "User: Is the weather in Zürich nice? ☃\n"
    assert tokenizer.decode(tokenizer(novel)["input_ids"]) == novel


def test_unknown_tokenizer_kind_is_named():
    with pytest.raises(ValueError, match="'chars'"):
        train_tokenizer(["User: hi\n"], 50, kind="chars")


def test_cap_repeats_keeps_each_distinct_item_at_most_n_times_in_order():
    items = ["a", "b", "a", "c", "a", "b"]
    assert cap_repeats(items, 1) == ["a", "b", "c"]
    assert cap_repeats(items, 2) == ["a", "b", "a", "c", "b"]
    assert cap_repeats(items, 0) == items
    with pytest.raises(ValueError, match="max_repeats"):
        cap_repeats(items, -1)


def test_spelling_words_in_bytes_keeps_the_text_and_practises_the_bytes():
    texts = [render_dialogue(d) for d in load_dialogues()[:300]]
    tokenizer = train_tokenizer(texts, 600, kind="word")
    ids = [tokenizer(t)["input_ids"] for t in texts[:20]]
    spelling = byte_spellings(tokenizer)
    assert tokenizer.eos_token_id not in spelling and tokenizer.pad_token_id not in spelling
    for rate in (0.0, 0.3, 1.0):
        spelled = spell_some(ids, spelling, rate, random.Random(0))
        assert [tokenizer.decode(s) for s in spelled] == [tokenizer.decode(s) for s in ids]
    words_in = sum(t in spelling for s in ids for t in s)
    some = spell_some(ids, spelling, 0.3, random.Random(0))
    added = sum(map(len, some)) - sum(map(len, ids))
    assert words_in > 50 and 0 < added < sum(map(len, spell_some(ids, spelling, 1.0, random.Random(0))))
    assert not any(t in spelling for s in spell_some(ids, spelling, 1.0, random.Random(0)) for t in s)
    assert spell_some(ids, spelling, 0.0, random.Random(0)) == ids


def test_spelling_escapes_are_the_bytes_that_spell_a_word_and_nothing_else():
    tokenizer = train_tokenizer([render_dialogue(d) for d in load_dialogues()[:300]], 600, kind="word")
    vocab = tokenizer.get_vocab()
    escapes = set(spelling_escapes(tokenizer))
    # the lone space that opens a spelled word, letters, digits, a byte of a non-ASCII character ("é" is c3 a9)
    assert {vocab[t] for t in ("\u0120", "a", "Z", "7", "\u00c3")} <= escapes
    # the eos, the newline between turns, punctuation, and every whole word stay
    kept = {EOS, PAD, "\u010a", ".", "?", ",", "'", "\u0120the", "\u0120I"}
    assert not escapes & {vocab[t] for t in kept}
    assert all(len(t) == 1 for t, i in vocab.items() if i in escapes)


@pytest.mark.slow
def test_the_default_policy_never_samples_a_word_spelled_in_bytes(default_policy):
    """The word tokenizer spells words outside its vocabulary in bytes, opened by a lone space: one token that
    holds the mass of every such word, which sampling took and strung into non-words ("Tattinerig"). The
    built policy keeps the bytes for scoring text but suppresses them in every ``generate`` call."""
    model, tokenizer = load_policy(default_policy.path, device="cpu")
    escapes = set(spelling_escapes(tokenizer))
    assert set(model.generation_config.suppress_tokens) == escapes
    turns = ["User: What is your name?\nBot:", "User: Do you like zeppelins?\nBot:"]
    prompt = tokenizer(turns * 16, return_tensors="pt", padding=True)

    def sampled() -> set[int]:
        torch.manual_seed(0)
        out = model.generate(**prompt, do_sample=True, max_new_tokens=24, top_k=0, pad_token_id=tokenizer.pad_token_id)
        return set(out[:, prompt["input_ids"].shape[1] :].flatten().tolist())

    assert not sampled() & escapes
    model.generation_config.suppress_tokens = None  # what the policy sampled before: spelled words
    assert sampled() & escapes


@pytest.mark.slow
def test_generation_scores_and_forward_passes_agree_once_spelling_is_masked(default_policy):
    """TRL's PPO takes a rollout's log-probabilities from the generation scores (suppressed tokens removed) and
    the training and reference ones from forward passes: they must be one distribution, or PPO's first ratio is
    not 1 (it was ~0.82 at temperature 0.5, a third of the tokens clipped) and its KL is off by ~2 nats a reply."""
    from transformers import GenerationConfig
    from trl.experimental.ppo.ppo_trainer import batch_generation, forward

    model, tokenizer = load_policy(default_policy.path, device="cpu")
    turns = ["User: What is your name?\nBot:", "User: Do you like zeppelins?\nBot:"]
    queries = tokenizer(turns * 8, return_tensors="pt", padding=True)["input_ids"]
    pad, t = tokenizer.pad_token_id, 0.5

    def gap() -> float:
        torch.manual_seed(0)
        config = GenerationConfig(max_new_tokens=12, temperature=t, top_k=0, top_p=1.0, do_sample=True)
        responses, scores = batch_generation(model, queries, 16, pad, config)
        width = queries.shape[1]
        # as TRL reads them: the scores are tempered already, the forward pass's logits are divided by t
        rollout = torch.log_softmax(scores, -1).gather(-1, responses[:, width:, None]).squeeze(-1)
        logits = forward(model, responses, pad).logits[:, width - 1 : -1] / t
        trained = torch.log_softmax(logits, -1).gather(-1, responses[:, width:, None]).squeeze(-1)
        kept = responses[:, width:] != pad
        return float((rollout - trained)[kept].abs().max())

    assert gap() > 0.05  # suppressed in generate alone: the scores renormalise, the forward pass does not
    mask_spelling(model)
    assert gap() < 1e-4
