import pytest

from rlhf.rewards.base import CallableReward
from rlhf.rewards.gold import gold_scorer
from rlhf.runs.evaluation import (
    DISTINCT_1,
    DISTINCT_2,
    ENV_REWARD,
    GOLD_REWARD,
    REPLY_LENGTH,
    WORD_RATE,
    corpus_vocabulary,
    distinct_n,
    evaluate_replies,
    word_rate,
)


def test_distinct_n_counts_repeated_ngrams():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["", "x"], 2) == 0.0


def test_evaluate_replies_reports_both_rewards_and_one_row_per_pair():
    contexts = [["Hi"], ["How are you?"]]
    replies = ["thanks a lot", "fine"]
    reward = CallableReward(lambda c, r: float(len(r)), batched=False)
    metrics, rows = evaluate_replies(contexts, replies, reward, gold_scorer("thanks"))
    assert metrics[ENV_REWARD] == pytest.approx(8.0) and metrics[GOLD_REWARD] == pytest.approx(0.5)
    assert metrics[REPLY_LENGTH] == pytest.approx(2.0)
    assert metrics[DISTINCT_1] == 1.0 and metrics[DISTINCT_2] == 1.0
    assert rows[0] == {"context": "Hi", "reply": "thanks a lot", "env_reward": 12.0, "gold_reward": 1.0}


def test_without_gold_there_is_no_gold_metric():
    metrics, rows = evaluate_replies([["Hi"]], ["yo"], gold_scorer("length"))
    assert GOLD_REWARD not in metrics and "gold_reward" not in rows[0]


def test_word_rate_pools_the_words_of_all_replies():
    vocabulary = {"i", "am", "fine", "thanks"}
    assert word_rate(["I am fine, thanks!", "iltten 19bert fine"], vocabulary) == pytest.approx(5 / 7)
    assert word_rate(["", "?!"], vocabulary) == 0.0


def test_evaluation_reports_the_word_rate_against_the_corpus_vocabulary():
    vocabulary = corpus_vocabulary()
    assert {"hello", "computer", "you"} <= vocabulary and "iltten" not in vocabulary
    replies = ["Hello, how are you?", "iltten 19bert givenian"]
    metrics, _ = evaluate_replies([["Hi"], ["Hi"]], replies, gold_scorer("length"))
    assert metrics[WORD_RATE] == pytest.approx(4 / 7)
