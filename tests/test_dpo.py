"""DPO from TRL on preference pairs in the chat format, evaluated like every trainer, at the tiny sizes."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from rlhf.envs import register_reward_env

from rlhf.config import load_config
from rlhf.data.chat import words
from rlhf.data.corpus import corpus_contexts
from rlhf.data.preferences import make_preference, write_preferences
from rlhf.rewards.base import CallableReward
from rlhf.runs.evaluation import GOLD_REWARD, KL
from rlhf.runs.records import read_run
from rlhf.training.dpo import DPOConfig, dpo_rows, train_dpo

WORDY_ENV = "rlhf-test/WordyDPO-v0"


def verbosity(contexts, replies):
    """min(words, 8) / 8 (as in test_ppo): what the pairs below prefer."""
    return [min(len(words(r)), 8) / 8 for r in replies]


register_reward_env(WORDY_ENV, CallableReward(verbosity, name="verbosity"))


def test_rows_are_the_prompt_and_replies_as_the_policy_writes_them():
    rows = dpo_rows([make_preference(["Hi", "Hello", "How are you?"], "Fine, thanks.", "No.")])
    assert rows == {"prompt": ["User: Hi\nBot: Hello\nUser: How are you?\nBot:"], "chosen": [" Fine, thanks.\n"],
                    "rejected": [" No.\n"]}  # fmt: skip


def test_a_prompt_not_in_the_chat_format_is_named_by_row():
    good = make_preference(["Hi"], "Hello there.", "No.")
    raw = {**good, "prompt": "Human: Hi\n\nAssistant:"}  # another chat format than the policy's
    with pytest.raises(ValueError, match=r"pairs.jsonl row 1: prompt 'Human: Hi\\n\\nAssistant:' is not in the"):
        dpo_rows([good, raw], "pairs.jsonl")
    with pytest.raises(ValueError, match=r"row 0: chosen must be one non-empty line"):
        dpo_rows([{**good, "chosen": "two\nlines"}])


def test_shipped_yaml_mirror_the_dataclass_field_for_field():
    fields = {f.name for f in dataclasses.fields(DPOConfig)}
    for path in Path("configs/dpo").glob("*.yaml"):
        assert set(yaml.safe_load(path.read_text())) == fields, path
        load_config(DPOConfig, path)


@pytest.mark.slow
def test_dpo_learns_the_preferred_replies(tmp_path, tiny_policy_config, tiny_policy):
    """Pairs that prefer the corpus's long reply (8+ words) to "Yes.": DPO's implicit reward ranks them.

    DPO can meet its objective by pushing "Yes." down without lengthening what it samples (on the tiny policy
    of the clean split the held-out length did not move), so the test asserts what DPO optimises: the
    margin between chosen and rejected grows and every pair of the last batch is ranked right."""
    contexts = [c for c in corpus_contexts("train") if len(words(c.continuation)) >= 8][:96]
    write_preferences([make_preference(c.turns, c.continuation, "Yes.") for c in contexts], tmp_path / "pairs.jsonl")
    (tmp_path / "reward.yaml").write_text(f"preferences: {tmp_path / 'pairs.jsonl'}\nheldout_fraction: 0.1\n")
    config = load_config(DPOConfig, "configs/dpo/tiny.yaml")
    config = dataclasses.replace(
        config, policy_kwargs={**config.policy_kwargs, "cache_dir": tiny_policy_config.cache_dir},
        runs_dir=str(tmp_path / "runs"), wandb_mode="disabled", env_id=WORDY_ENV, env_kwargs={"gold": "default"},
        preference_config=str(tmp_path / "reward.yaml"), max_pairs=None, eval_contexts=32, response_length=10,
    )  # fmt: skip
    result = train_dpo(config)
    assert result.finished and result.steps == 6 and result.samples == 86  # 90 % of 96 pairs, batches of 16
    assert result.before[KL] == pytest.approx(0.0, abs=1e-5) and result.after[KL] > 0 and GOLD_REWARD in result.after
    run = read_run(result.run_dir)
    assert run["info"]["algo"] == "dpo" and run["summary"]["pairs"] == 86
    trained = [r for r in run["metrics"] if "loss" in r]
    assert [r["step"] for r in trained] == [1, 2, 3, 4, 5, 6]
    assert trained[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # policy == reference at the start
    assert trained[-1]["rewards/margins"] > 0.5 and trained[-1]["rewards/accuracies"] == 1.0
