"""The reward model that reads the context (rlhf.models.context_match) and the preference set that needs it."""

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rlhf.config import load_config
from rlhf.data.chat import render_exchange
from rlhf.models.context_match import ContextMatchForSequenceClassification, context_match_from, token_weights
from rlhf.rewards.reward_model import RewardModelScorer
from rlhf.training.reward_model import RewardModelConfig, load_reward_base, pair_texts, train_reward_model

REPO = Path(__file__).resolve().parents[1]
CONTEXT_SET = str(REPO / "tests" / "data" / "context_preferences")


@pytest.fixture(scope="module")
def fresh(tiny_policy):
    """A reward model just built from the tiny policy: relevance term at its starting weights."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_policy.path)
    return context_match_from(tiny_policy.path, tokenizer).eval(), tokenizer


def relevance(model, tokenizer, context, reply) -> float:
    ids = tokenizer(render_exchange(context, reply), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model.relevance(ids).item()


def test_a_reply_repeating_the_question_s_words_is_relevant_from_the_start(fresh):
    model, tokenizer = fresh
    assert torch.equal(model.match_proj.weight, torch.eye(model.config.n_embd))  # not the GPT-2 init's noise
    assert model.match_scale.item() == pytest.approx(1.0)
    # Every token of the reply is in the question: each matches itself with cosine 1, for any projection.
    assert relevance(model, tokenizer, ["tell me about zebra crossings"], "zebra crossings") == pytest.approx(1.0)
    on_topic = relevance(model, tokenizer, ["do you like zebra crossings"], "zebra crossings are fine")
    off_topic = relevance(model, tokenizer, ["do you like zebra crossings"], "my printer is broken")
    assert on_topic > off_topic


def test_only_the_last_user_turn_is_read_and_the_cues_never_match(fresh):
    model, tokenizer = fresh
    reply = "zebra crossings"
    earlier = ["tell me about zebra crossings", "sure", "what is the time"]  # the words sit in an older turn
    last = ["what is the time", "sure", "tell me about zebra crossings"]
    assert relevance(model, tokenizer, last, reply) == pytest.approx(1.0)
    assert relevance(model, tokenizer, earlier, reply) < 0.9
    # The cue and line-break tokens are in every exchange: they are no words to match.
    ignored = set(model.config.ignored_ids)
    assert set(model.config.bot_cue_ids) <= ignored and set(model.config.user_cue_ids) <= ignored
    # A reply with no word (empty, a space, punctuation) matches nothing: spaces and "?" are in every question.
    for wordless in ("", "?", " . ! "):
        assert relevance(model, tokenizer, ["do you like zebra crossings?"], wordless) == 0.0, repr(wordless)
    # Text that is no exchange (no bot cue) gets no relevance term, so the score is GPT-2's alone.
    ids = tokenizer("zebra crossings zebra crossings", return_tensors="pt")["input_ids"]
    assert model.relevance(ids).item() == 0.0


def test_padding_does_not_change_a_score(fresh):
    model, tokenizer = fresh
    # Pad with eos, as reward models of tokenizers without a pad token do: eos is no special case of the masks.
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    texts = [render_exchange(["tell me about zebra crossings"], "zebra"), render_exchange(["hi"], "hello there friend")]
    with torch.no_grad():
        alone = [model(**tokenizer(t, return_tensors="pt")).logits.item() for t in texts]
        batch = model(**tokenizer(texts, return_tensors="pt", padding=True)).logits[:, 0].tolist()
    assert batch == pytest.approx(alone, abs=1e-5)


def test_a_saved_model_loads_by_the_auto_class_and_scores_alike(fresh, tmp_path):
    model, tokenizer = copy.deepcopy(fresh[0]), fresh[1]
    with torch.no_grad():  # trained values, not the starting ones
        model.match_weight.fill_(0.07)
        model.match_proj.weight.add_(0.01 * torch.randn_like(model.match_proj.weight))
        model.match_gate.weight.normal_()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert isinstance(loaded, ContextMatchForSequenceClassification)
    assert loaded.match_scale.item() == pytest.approx(7.0)
    saved = model.state_dict()
    assert all(torch.equal(value, saved[name]) for name, value in loaded.state_dict().items())
    contexts, replies = [["tell me about zebra crossings"], ["hi"]], ["zebra crossings", "hello"]
    with torch.no_grad():
        expected = [
            model(**tokenizer(render_exchange(c, r), return_tensors="pt")).logits.item()
            for c, r in zip(contexts, replies, strict=True)
        ]
    assert RewardModelScorer(tmp_path, device="cpu")(contexts, replies).tolist() == pytest.approx(expected, abs=1e-5)


def test_common_words_weigh_less_than_rare_ones(fresh):
    model, tokenizer = copy.deepcopy(fresh[0]), fresh[1]
    records = [
        {"context": ["you and i like tea"], "chosen": "i sing", "rejected": "so i like tea"},
        {"context": ["then i am here"], "chosen": "i see", "rejected": "and i sing"},
    ]
    weights = token_weights(tokenizer, pair_texts(records))
    ids = lambda word: tokenizer(f" {word}", add_special_tokens=False)["input_ids"]  # noqa: E731
    assert weights[ids("i")].tolist() == [0.0]  # in every text, where it opens one too (as the model reads it)
    assert weights.max() == 1.0 and (weights == 1.0).sum() > len(tokenizer) - 40  # tokens no text holds
    assert weights[ids("sing")].min() > 0 and weights[ids("sing")].max() < 1
    # "i" matches itself fully, so it counts as relevant with even weights and for nothing with these.
    context = ["you and i like zebra crossings"]
    score = lambda reply: relevance(model, tokenizer, context, reply)  # noqa: E731
    assert score(" i") == pytest.approx(1.0) and score(" i sing") != pytest.approx(score(" sing"))
    model.set_token_weights(weights)
    assert score(" i") == 0.0 and score(" i sing") == pytest.approx(score(" sing"))


def test_a_model_saved_before_token_weights_loads_with_even_ones(fresh, tmp_path):
    from safetensors.torch import load_file, save_file

    model = copy.deepcopy(fresh[0])
    with torch.no_grad():
        model.match_proj.weight.add_(0.01)
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["match_idf"]  # as version 2 saved it
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert torch.equal(loaded.match_idf, torch.ones_like(loaded.match_idf))
    assert torch.equal(loaded.match_proj.weight, model.match_proj.weight)  # the term's trained weights are kept


def test_context_match_false_is_the_plain_gpt2_classifier_and_other_families_get_it_too(tiny_policy, tmp_path, capsys):
    plain, _ = load_reward_base(tiny_policy.path, context_match=False)
    assert type(plain).__name__ == "GPT2ForSequenceClassification"
    folder = tmp_path / "llama"
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=600, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(folder)  # fmt: skip
    # The default (context_match: true) on a base of another family: the plain classifier, and a line saying so.
    model, _ = load_reward_base(str(folder), tiny_policy.path, context_match=True)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert "the relevance term is built on GPT-2" in capsys.readouterr().out
    with pytest.raises(ValueError, match="context_match: false"):
        context_match_from(str(folder), AutoTokenizer.from_pretrained(tiny_policy.path))


def test_a_reward_model_made_by_older_relevance_code_is_not_reused(tiny_policy, tmp_path, monkeypatch):
    import rlhf.models.context_match as context_match
    from rlhf.training.reward_model import pmp_dir, reward_model_fingerprint

    config = RewardModelConfig(cache_dir=str(tmp_path))
    before = reward_model_fingerprint(config, CONTEXT_SET, tiny_policy.path)["fingerprint"]
    backbone = pmp_dir(config, tiny_policy.path)
    monkeypatch.setattr(context_match, "VERSION", context_match.VERSION + 1)
    assert reward_model_fingerprint(config, CONTEXT_SET, tiny_policy.path)["fingerprint"] != before
    assert pmp_dir(config, tiny_policy.path) != backbone


@pytest.mark.slow
def test_the_default_reward_model_ranks_answers_to_questions_it_never_saw(default_policy, tmp_path):
    """Issue 11's target: the README's reward-model command with the default backbone, on the context set
    (train.jsonl to train, test.jsonl on held-out contexts to evaluate), target ≥ 0.85 held-out accuracy. Without
    the relevance term (context_match: false) the same command reaches 0.56-0.68 (docs/BENCHMARKS.md)."""
    config = load_config(
        RewardModelConfig,
        REPO / "configs" / "reward" / "default.yaml",
        ["--preferences", CONTEXT_SET, "--heldout_preferences", CONTEXT_SET],
    )
    config = dataclasses.replace(
        config, policy=default_policy.path, output_dir=str(tmp_path / "rm"), runs_dir=str(tmp_path / "runs"),
        cache_dir=str(tmp_path / "cache"), wandb_mode="disabled", device="cpu",
    )  # fmt: skip
    report = train_reward_model(config)
    assert report.heldout_pairs == 302 and report.train_pairs == 1114
    # Seeds 0 / 1 / 2 measured 0.901 / 0.861 / 0.844 with the token weights of version 4 (0.851 / 0.821 / 0.818
    # without them; docs/BENCHMARKS.md, round 7).
    assert report.pairwise_accuracy >= 0.85
