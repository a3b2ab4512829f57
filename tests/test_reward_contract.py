"""One contract for every reward implementation: the gold scorers, user callables and a reward model."""

import numpy as np
import pytest

from rlhf.data.chat import words
from rlhf.rewards.base import CallableReward, RewardError, RewardFunction, score_checked
from rlhf.rewards.gold import GOLD_SCORERS, gold_scorer
from rlhf.rewards.reward_model import RewardModelScorer

CONTEXTS = [
    ("Hello",),
    ("What is your favorite book?", "I like novels.", "Which one?"),
    ("Tell me a joke",),
    ("Are you a robot?",),
    ("“Quotes” – and dashes…",),
]
REPLIES = [
    "Hi there, thank you for asking!",
    "Probably The Hitchhiker's Guide to the Galaxy, it is wonderful.",
    "no no no no no no",
    "I am a bot, but a friendly one.",
    "x" * 300 + " hello" * 150,  # longer than the tiny reward model's 128 positions
]


def overlap(contexts, replies):
    """A batched user reward: words the reply shares with the last user turn."""
    return np.array([len(set(words(c[-1])) & set(words(r))) for c, r in zip(contexts, replies, strict=True)], float)


def reply_length(context, reply):
    """An unbatched user reward."""
    return len(reply) / 100


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_policy, tmp_path_factory):
    """A randomly headed GPT2ForSequenceClassification (one output) saved beside its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_rm")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_policy.path, num_labels=1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_policy.path).save_pretrained(folder)
    return folder


IMPLEMENTATIONS = [*(f"gold:{name}" for name in GOLD_SCORERS), "callable:batched", "callable:unbatched", "reward_model"]


@pytest.fixture(params=IMPLEMENTATIONS)
def reward(request) -> RewardFunction:
    kind, _, name = request.param.partition(":")
    if kind == "gold":
        return gold_scorer(name)
    if kind == "callable":
        return CallableReward(overlap) if name == "batched" else CallableReward(reply_length, batched=False)
    # The default max_length (256) exceeds the tiny model's 128 positions: the scorer must cap it itself.
    return RewardModelScorer(request.getfixturevalue("tiny_reward_model"), device="cpu", batch_size=2)


def test_reward_contract(reward):
    scores = reward(CONTEXTS, REPLIES)  # through score_checked, like every caller
    assert isinstance(scores, np.ndarray) and scores.shape == (len(REPLIES),)
    assert np.issubdtype(scores.dtype, np.floating) and np.isfinite(scores).all()
    np.testing.assert_array_equal(scores, reward(CONTEXTS, REPLIES))  # deterministic
    one_by_one = np.concatenate([reward([c], [r]) for c, r in zip(CONTEXTS, REPLIES, strict=True)])
    np.testing.assert_allclose(scores, one_by_one, rtol=1e-5, atol=1e-5)
    assert reward([], []).shape == (0,)
    for name, part in reward.score_parts(CONTEXTS, REPLIES).items():
        assert np.asarray(part).shape == (len(REPLIES),), name


@pytest.mark.parametrize(
    "returned, error, message",
    [
        (lambda c, r: np.zeros((len(r), 2)), ValueError, r"shape \(5, 2\) for 5 pairs"),
        (lambda c, r: np.zeros(len(r) + 1), ValueError, r"shape \(6,\) for 5 pairs"),
        (lambda c, r: np.full(len(r), np.nan), ValueError, "returned nan for pair 0"),
        (lambda c, r: np.array([1.0, 2.0, np.inf, 0.0, 0.0]), ValueError, "returned inf for pair 2"),
        (lambda c, r: "great", TypeError, "returned str, not numbers"),
    ],
    ids=["2d", "too-long", "nan", "inf", "string"],
)
def test_a_bad_callable_reward_raises_a_clear_error(returned, error, message):
    with pytest.raises(error, match=message):
        score_checked(CallableReward(returned, name="bad"), CONTEXTS, REPLIES)


def _fails_on_sorry(context, reply):
    if "sorry" in reply:
        raise KeyError("no score for apologies")
    return 1.0


@pytest.mark.parametrize(
    "fn, batched, message",
    [
        (_fails_on_sorry, False, r"reward 'bad' raised KeyError: 'no score for apologies' on pair 1 \(context .*reply"),
        (
            lambda c, r: None if "sorry" in r else 1.0,
            False,
            r"reward 'bad' returned None \(NoneType\), not a number, "
            r"for pair 1 \(context",
        ),
        (
            lambda c, r: [1.0, "high", 0.0, 0.0, 0.0],
            True,
            r"returned 'high' \(str\), not a number, for pair 1 \(context",
        ),
        (
            lambda c, r: 1 / 0,
            True,
            r"reward 'bad' raised ZeroDivisionError: .* on a batch of 5 pairs, the first pair 0",
        ),
    ],
    ids=["per-pair-raises", "per-pair-none", "batched-string-item", "batched-raises"],
)
def test_a_reward_that_raises_or_returns_a_non_number_is_named_with_the_pair(fn, batched, message):
    replies = ["fine", "sorry about that", "ok", "sure", "yes"]
    with pytest.raises(RewardError, match=message):
        score_checked(CallableReward(fn, name="bad", batched=batched), CONTEXTS, replies)


def test_mismatched_batch_lengths_raise():
    with pytest.raises(ValueError, match="5 contexts but 4 replies"):
        score_checked(gold_scorer("length"), CONTEXTS, REPLIES[:4])
