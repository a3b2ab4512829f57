import io
import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from rlhf.data.chat import render_exchange, words
from rlhf.data.corpus import DialogueContext, context_key, corpus_contexts
from rlhf.data.preferences import (
    EMPTY_REPLY,
    IDENTICAL,
    PreferenceDataError,
    context_of_prompt,
    context_preferences,
    corpus_comparisons,
    hh_transcript,
    read_preferences,
    split_preferences,
    word_swaps,
    write_preferences,
)
from rlhf.rewards.gold import gold_scorer
from rlhf.rewards.labeller import disjoint_pairs, label_by_hand, label_synthetic_preferences

HH_ROW = {
    "chosen": "\n\nHuman: What is AI?\n\nAssistant: A science.\n\nHuman: Is it fun?\n\nAssistant: Yes, a lot of fun!",
    "rejected": "\n\nHuman: What is AI?\n\nAssistant: A science.\n\nHuman: Is it fun?\n\nAssistant: No.",
}

CONTEXT_PREFERENCES = Path(__file__).parent / "data" / "context_preferences"


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_explicit_prompt_rows_become_our_chat_format(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Hello there", "chosen": "Hi!", "rejected": "Go away."}])
    (record,), stats = read_preferences(path)
    assert record["prompt"] == "User: Hello there\nBot:" and record["context"] == ["Hello there"]
    assert record["prompt"] + f" {record['chosen']}\n" == render_exchange(record["context"], record["chosen"])
    assert (stats.read, stats.kept, stats.dropped) == (1, 1, {})


def test_rendered_prompts_parse_back_into_turns():
    assert context_of_prompt("User: a\nBot: b\nUser: c\nBot:") == ["a", "b", "c"]
    assert context_of_prompt("just a question") == ["just a question"]


def test_hh_rlhf_transcripts_are_converted(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", [HH_ROW])
    (record,), _ = read_preferences(path)
    assert record["context"] == ["What is AI?", "A science.", "Is it fun?"]
    assert (record["chosen"], record["rejected"]) == ("Yes, a lot of fun!", "No.")


def test_csv_and_parquet_read_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"prompt": "Hi", "chosen": "Hello!", "rejected": "no"},
        {"prompt": "Yo", "chosen": "Hey", "rejected": "Hey"},
    ]
    (tmp_path / "p.csv").write_text("prompt,chosen,rejected\nHi,Hello!,no\nYo,Hey,Hey\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    for name in ("p.csv", "p.parquet"):
        records, stats = read_preferences(tmp_path / name)
        assert [r["chosen"] for r in records] == ["Hello!"] and stats.dropped == {IDENTICAL: 1}


def test_a_local_dataset_folder_loads_through_datasets(tmp_path):
    folder = tmp_path / "hh"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [HH_ROW] * 3)
    records, stats = read_preferences(str(folder), split="train")
    assert len(records) == 3 and stats.kept == 3


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}, "{not json"])
    with pytest.raises(PreferenceDataError, match=r"bad\.jsonl:2: not valid JSON"):
        read_preferences(path)


def test_row_missing_chosen_names_line_and_column(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}, {"prompt": "a", "rejected": "c"}]
    )
    with pytest.raises(PreferenceDataError, match=r"p\.jsonl:2: missing column 'chosen' \(found: prompt, rejected\)"):
        read_preferences(path)


def test_non_text_value_names_line_and_column(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "chosen": 3, "rejected": "c"}])
    with pytest.raises(PreferenceDataError, match=r"p\.jsonl:1: column 'chosen' must be text, got int"):
        read_preferences(path)


def test_empty_and_identical_pairs_are_dropped_and_counted(tmp_path):
    rows = [
        {"prompt": "a", "chosen": "good", "rejected": "bad"},
        {"prompt": "a", "chosen": "  ", "rejected": "bad"},
        {"prompt": "a", "chosen": None, "rejected": "bad"},
        {"prompt": "a", "chosen": "same  reply", "rejected": "same reply"},
    ]
    records, stats = read_preferences(write_jsonl(tmp_path / "p.jsonl", rows))
    assert len(records) == 1 and (stats.read, stats.kept) == (4, 1)
    assert stats.dropped == {EMPTY_REPLY: 2, IDENTICAL: 1}
    assert "read 4 rows, kept 1, dropped 3" in str(stats)


def test_table_without_expected_columns_names_missing_and_found(tmp_path):
    (tmp_path / "p.csv").write_text("question,good,bad\nHi,Hello,no\n")
    with pytest.raises(PreferenceDataError, match=r"missing column\(s\) 'chosen', 'rejected'.*found columns: question"):
        read_preferences(tmp_path / "p.csv")


def test_split_is_seeded_and_keeps_a_prompt_on_one_side():
    records = [{"prompt": f"p{i % 10}", "chosen": "a", "rejected": "b"} for i in range(50)]
    train, heldout = split_preferences(records, 0.2, seed=1)
    assert len(train) + len(heldout) == 50 and 5 <= len(heldout) <= 15
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in heldout}
    assert split_preferences(records, 0.2, seed=1) == (train, heldout)


def test_disjoint_pairs_use_each_reply_once():
    import random

    pairs = [(("a", 1.0), ("b", 0.0)), (("a", 1.0), ("c", 0.0)), (("d", 0.9), ("c", 0.0))]
    picked = disjoint_pairs(pairs, 5, random.Random(0))
    replies = [r for a, b in picked for r, _ in (a, b)]
    assert len(replies) == len(set(replies)) == 4


def test_synthetic_labeller_respects_the_margin_and_reuses_its_file(tiny_policy, tmp_path, capsys, monkeypatch):
    kwargs = dict(gold="sentiment", num_contexts=12, samples_per_context=2, corpus_replies=3, margin=0.5, device="cpu")
    path = label_synthetic_preferences(tiny_policy.path, tmp_path, **kwargs)
    records, stats = read_preferences(path)
    assert records and stats.dropped == {}
    assert all(r["chosen_score"] - r["rejected_score"] >= 0.5 for r in records)
    assert label_synthetic_preferences(tiny_policy.path, tmp_path, **kwargs) == path
    assert "reusing synthetic preferences" in capsys.readouterr().out
    # the same policy by another path (a re-run from another directory) reuses the labels too
    elsewhere = os.path.relpath(tiny_policy.path, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert label_synthetic_preferences(elsewhere, tmp_path, **kwargs) == path
    assert "reusing synthetic preferences" in capsys.readouterr().out


def test_human_labelling_appends_each_answer_and_resumes(tmp_path):
    items = [(["Hi"], "Hello!", "Go away."), (["How are you?"], "Fine.", "Bad."), (["Bye"], "See you", "whatever")]
    out = tmp_path / "human.jsonl"
    stats = label_by_hand(items, out, io.StringIO("x\na\ns\nq\n"), io.StringIO())
    assert (stats.shown, stats.labelled, stats.skipped, stats.quit) == (3, 1, 1, True)
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["chosen"], row["rejected"], row["labeller"]) == ("Hello!", "Go away.", "human")  # "x" was re-asked
    stats = label_by_hand(items, out, io.StringIO("a\n"), io.StringIO())  # end of input after one answer = quit
    assert (stats.shown, stats.labelled) == (2, 1)
    records, _ = read_preferences(out)
    assert [r["chosen"] for r in records] == ["Hello!", "Fine."]
    write_preferences(records, out)  # what the tool writes is what the readers read
    assert read_preferences(out)[0] == records


def test_context_preference_files_are_the_generated_sets():
    for name, split, rounds in (("train", "train", 6), ("test", "heldout", 20)):
        rows = [json.loads(line) for line in (CONTEXT_PREFERENCES / f"{name}.jsonl").read_text().splitlines()]
        assert rows == context_preferences(split=split, rounds=rounds), (
            "regenerate: scripts/make_context_preferences.py"
        )


@pytest.mark.parametrize("name, at_least", [("train", 1000), ("test", 250)])
def test_context_preferences_cannot_be_ranked_without_reading_the_context(name, at_least):
    records, stats = read_preferences(CONTEXT_PREFERENCES / f"{name}.jsonl")
    assert stats.kept == stats.read >= at_least
    # Each reply is the right answer once and the wrong one once, so any score of the reply alone
    # (length, sentiment, politeness) ranks exactly half the pairs right.
    assert Counter(r["chosen"] for r in records) == Counter(r["rejected"] for r in records)
    # The reply that answers names something the context is about.
    assert all(set(words(r["chosen"])) & set(words(" ".join(r["context"]))) for r in records)
    for blind in ("length", "sentiment", "default"):
        scorer = gold_scorer(blind)
        chosen = scorer([["?"]] * len(records), [r["chosen"] for r in records])
        rejected = scorer([["?"]] * len(records), [r["rejected"] for r in records])
        assert sum(chosen > rejected) + 0.5 * sum(chosen == rejected) == len(records) / 2, blind


def test_context_test_set_is_text_no_training_data_holds():
    """The test pairs' contexts and chosen replies appear neither in the train file nor in the corpus
    comparisons the reward model is pretrained on (the training side of the environments' split)."""
    train, _ = read_preferences(CONTEXT_PREFERENCES, split="train")
    test, _ = read_preferences(CONTEXT_PREFERENCES, split="test")
    pretraining = corpus_comparisons(split="train", per_context=1, swaps=1)
    seen_contexts = {context_key(r["context"]) for r in train + pretraining}
    seen_replies = {context_key([r[k]]) for r in train + pretraining for k in ("chosen", "rejected")}
    assert test and not {context_key(r["context"]) for r in test} & seen_contexts
    assert not {context_key([r["chosen"]]) for r in test} & seen_replies
    # The generator's split is the environments' one: the held-out side is what the envs evaluate on.
    heldout_openings = {context_key(c.turns) for c in corpus_contexts("heldout", 0.1, 0)}
    assert {context_key(r["context"][:1]) for r in test} <= heldout_openings


def test_pretraining_comparisons_pit_the_real_reply_against_another():
    records = corpus_comparisons(split="train", per_context=2, swaps=0, seed=1)
    heldout_openings = {context_key(c.turns) for c in corpus_contexts("heldout", 0.1, 0)}
    assert len(records) > 1000 and not {context_key(r["context"][:1]) for r in records} & heldout_openings
    assert all(context_key([r["chosen"]]) != context_key([r["rejected"]]) for r in records)


def test_word_swaps_replace_the_shared_word_in_context_and_reply_alike():
    items = [
        DialogueContext(("Do you play cricket?",), "Cricket is a fine game."),
        DialogueContext(("What is your name?",), "My name is Bot."),
        DialogueContext(("Tell me about the sea",), "Fish swim in it."),
    ]
    records = word_swaps(items, per_context=20, rng=random.Random(0))
    assert records and {r["context"][0].split()[-1] for r in records} != {"cricket?"}  # other words stand in
    for r in records:
        swapped = words(r["context"][0])[-1]  # the word in place of "cricket" (or "name")
        assert swapped in words(r["chosen"]) and swapped not in words(r["rejected"])
        assert not set(words(r["rejected"])) & set(words(r["context"][0])) - {"is", "a", "the", "my"}


def test_word_swaps_rejected_reply_carries_an_odd_word_too():
    """Not only the chosen reply holds a swapped-in word: the rejected one holds one as well, which the context
    does not, so "the reply contains an odd word" cannot tell them apart; only matching the context can."""
    items = [
        DialogueContext(("Do you play cricket?",), "Cricket is a fine game."),
        DialogueContext(("What is your name?",), "My name is Bot."),
        DialogueContext(("Tell me about the sea",), "Fish swim in it."),
        DialogueContext(("Where do penguins live?",), "Penguins live near the south pole."),
    ]
    corpus_replies = {c.continuation for c in items}
    records = word_swaps(items, per_context=40, rng=random.Random(0))

    def one_word_apart(a: str, b: str) -> bool:
        return len(words(a)) == len(words(b)) and sum(x != y for x, y in zip(words(a), words(b), strict=True)) == 1

    minimal = [r for r in records if one_word_apart(r["chosen"], r["rejected"])]
    assert minimal and len(minimal) < len(records)  # both kinds of rejected reply
    for r in records:
        assert r["rejected"] not in corpus_replies  # never a corpus reply left as it was
        context = set(words(r["context"][0]))
        odd = [w for w in words(r["rejected"]) if w not in {w for c in items for w in words(c.continuation)}
               or w not in words(r["chosen"]) and w not in context]  # fmt: skip
        assert odd and not set(odd) & context
    for r in minimal:  # the same reply but for the one word: the chosen one's is the context's
        (chosen_word,) = set(words(r["chosen"])) - set(words(r["rejected"]))
        (rejected_word,) = set(words(r["rejected"])) - set(words(r["chosen"]))
        assert chosen_word in words(r["context"][0]) and rejected_word not in words(r["context"][0])


def test_a_folder_of_preference_files_reads_its_split(tmp_path):
    write_jsonl(tmp_path / "train-round-1.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}])
    write_jsonl(tmp_path / "train-round-2.jsonl", [{"prompt": "d", "chosen": "e", "rejected": "f", "gold": 1.5}])
    write_jsonl(tmp_path / "test.jsonl", [{"prompt": "g", "chosen": "h", "rejected": "i"}])
    assert [r["chosen"] for r in read_preferences(tmp_path)[0]] == ["b", "e"]
    assert [r["chosen"] for r in read_preferences(tmp_path, split="test")[0]] == ["h"]
    (tmp_path / "test.jsonl").unlink()  # no file named for the split: every file is read
    assert [r["chosen"] for r in read_preferences(tmp_path, split="test")[0]] == ["b", "e"]
    write_jsonl(tmp_path / "train-round-3.jsonl", ["{not json"])
    with pytest.raises(PreferenceDataError, match="train-round-3.jsonl:1"):
        read_preferences(tmp_path)


def test_hh_transcript_round_trips_through_the_reader(tmp_path):
    row = {
        "chosen": hh_transcript(["Hi", "Hello!", "How are you?"], "Fine."),
        "rejected": hh_transcript(["Hi", "Hello!", "How are you?"], "Blue."),
    }
    (record,), _ = read_preferences(write_jsonl(tmp_path / "hh.jsonl", [row]))
    assert record["context"] == ["Hi", "Hello!", "How are you?"] and record["chosen"] == "Fine."


def test_labelling_takes_only_its_own_answers(tmp_path):
    items = [(["Hi"], "Hello!", "Go away."), (["Bye"], "See you", "whatever")]
    out = tmp_path / "human.jsonl"
    shown = io.StringIO()
    # "banana" once counted as b and "question" as quit; both are asked again, then "a" and "quit" are taken.
    stats = label_by_hand(items, out, io.StringIO("banana\nquestion\na\nquit\n"), shown)
    assert (stats.labelled, stats.quit) == (1, True)
    assert shown.getvalue().count("please answer a, b, s (skip) or q (quit)") == 2
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["chosen"] == "Hello!"


def test_labelling_survives_a_truncated_answers_file_and_names_the_line(tmp_path):
    items = [(["Hi"], "Hello!", "Go away."), (["Bye"], "See you", "whatever")]
    out = tmp_path / "human.jsonl"
    label_by_hand(items[:1], out, io.StringIO("a\n"), io.StringIO())
    out.write_text(out.read_text() + '{"prompt": "User: Bye\\nBot:", "chos')  # a session killed mid-write
    shown = io.StringIO()
    stats = label_by_hand(items, out, io.StringIO("b\n"), shown)
    assert f"skipping damaged line {out}:2" in shown.getvalue()
    assert (stats.shown, stats.labelled) == (1, 1)  # the first pair stays answered, the second is asked again
    lines = out.read_text().splitlines()
    assert json.loads(lines[-1])["chosen"] == "whatever" and len(lines) == 3  # the new answer on a line of its own


def test_ctrl_c_while_labelling_keeps_every_answer(tmp_path):
    class CtrlCAfter(io.StringIO):
        def readline(self, *args):
            line = super().readline(*args)
            if not line:
                raise KeyboardInterrupt
            return line

    items = [(["Hi"], "Hello!", "Go away."), (["Bye"], "See you", "whatever")]
    out = tmp_path / "human.jsonl"
    stats = label_by_hand(items, out, CtrlCAfter("a\n"), io.StringIO())
    assert (stats.labelled, stats.quit) == (1, True)
    assert [json.loads(line)["chosen"] for line in out.read_text().splitlines()] == ["Hello!"]


def test_non_utf8_preference_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"prompt": "Hi", "chosen": "Hello", "rejected": "no"}\n{"prompt": "caf\xe9", "chosen": "a"}\n')
    with pytest.raises(PreferenceDataError, match=rf"{path}:2: not UTF-8 text"):
        read_preferences(path)
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_bytes(b"prompt,chosen,rejected\nHi,Hello,no\ncaf\xe9,a,b\n")
    with pytest.raises(PreferenceDataError, match=rf"{csv_path}:\d+: not UTF-8 text"):
        read_preferences(csv_path)
