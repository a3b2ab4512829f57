"""GRPO and RLOO from TRL on the dialogue environments' batched reward, at the tiny sizes."""

import dataclasses
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rlhf.envs import register_reward_env

from rlhf.config import load_config
from rlhf.data.chat import words
from rlhf.rewards.base import CallableReward
from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD, KL, SAMPLES
from rlhf.runs.records import read_run
from rlhf.training.grpo import GRPOConfig, train_grpo
from rlhf.training.online import EnvRewardFunc, check_online
from rlhf.training.rloo import RLOOConfig, train_rloo

WORDY_ENV = "rlhf-test/Wordy-v0"


def verbosity(contexts, replies):
    """min(words, 8) / 8: a dense reward the tiny policy can climb in a few updates (as in test_ppo)."""
    return [min(len(words(r)), 8) / 8 for r in replies]


register_reward_env(WORDY_ENV, CallableReward(verbosity, name="verbosity"))


def tiny_config(cls, tmp_path, tiny_policy_config, **overrides):
    """configs/<algo>/tiny.yaml on the session's tiny policy, with runs under ``tmp_path``."""
    folder = {GRPOConfig: "grpo", RLOOConfig: "rloo"}[cls]
    config = load_config(cls, f"configs/{folder}/tiny.yaml")
    policy_kwargs = {**config.policy_kwargs, "cache_dir": tiny_policy_config.cache_dir}
    defaults = dict(policy_kwargs=policy_kwargs, runs_dir=str(tmp_path / "runs"), wandb_mode="disabled")
    return dataclasses.replace(config, **{**defaults, **overrides})


def _env(score_replies):
    return SimpleNamespace(unwrapped=SimpleNamespace(score_replies=score_replies))


# -- the reward function and config errors, before any model is loaded ---------------------------------


def test_reward_function_scores_parsed_replies_in_their_contexts():
    seen = {}

    def score(contexts, replies):
        seen.update(contexts=contexts, replies=replies)
        return np.array([1.0, 2.0])

    reward = EnvRewardFunc(_env(score), "mine")
    out = reward(prompts=["User: a\nBot:"] * 2, completions=[" Hi there\nUser: more", " Bye.Bot: x"],
                 context=[["a"], ["b", "c", "d"]])  # fmt: skip
    assert out == [1.0, 2.0] and reward.__name__ == "mine"
    assert seen == {"contexts": [("a",), ("b", "c", "d")], "replies": ["Hi there", "Bye."]}


def test_reward_function_with_the_wrong_number_of_scores_or_nan_is_named():
    short = EnvRewardFunc(_env(lambda c, r: np.zeros(len(r) - 1)), "short")
    with pytest.raises(ValueError, match=r"reward 'short' returned 1 scores for 2 replies"):
        short(prompts=["p", "p"], completions=[" a", " b"], context=[["x"], ["y"]])
    nan = EnvRewardFunc(_env(lambda c, r: np.array([0.5, math.nan])), "nan")
    with pytest.raises(
        ValueError, match=r"reward 'nan' returned nan for row 1 of the batch \(context 'y', reply 'b'\)"
    ):
        nan(prompts=["p", "p"], completions=[" a", " b"], context=[["x"], ["y"]])


def test_num_generations_that_does_not_divide_the_batch_is_named():
    with pytest.raises(ValueError, match="num_generations 3 does not divide batch_size 8"):
        check_online(GRPOConfig(batch_size=8, num_generations=3))
    with pytest.raises(ValueError, match="num_generations must be >= 2"):
        check_online(RLOOConfig(batch_size=8, num_generations=1))


@pytest.mark.parametrize("cls, folders", [(GRPOConfig, ("grpo",)), (RLOOConfig, ("rloo",))])
def test_shipped_yaml_mirror_the_dataclass_field_for_field(cls, folders):
    import yaml

    fields = {f.name for f in dataclasses.fields(cls)}
    for folder in folders:
        for path in Path("configs", folder).glob("*.yaml"):
            assert set(yaml.safe_load(path.read_text())) == fields, path
            load_config(cls, path)


# -- training -------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cls, train", [(GRPOConfig, train_grpo), (RLOOConfig, train_rloo)])
def test_group_methods_raise_an_easy_reward(cls, train, tmp_path, tiny_policy_config, tiny_policy):
    """Ten updates of 2 prompts x 4 replies on the dense "longer replies" reward (~0.44 -> ~0.63 here; the
    standard error of the mean of 32 sampled replies is ~0.05, so +0.1 is a rise, not noise)."""
    config = tiny_config(cls, tmp_path, tiny_policy_config, env_id=WORDY_ENV, env_kwargs={"gold": "default"},
                         total_episodes=80, batch_size=8, num_generations=4, response_length=10)  # fmt: skip
    result = train(config)
    assert result.finished and result.steps == 10 and result.samples == 80
    assert result.after[ENV_REWARD] > result.before[ENV_REWARD] + 0.1
    assert result.before[KL] == pytest.approx(0.0, abs=1e-5) and result.after[KL] > 0
    assert GOLD_REWARD in result.after
    rows = read_run(result.run_dir)["metrics"]
    trained = [r for r in rows if "rewards/verbosity/mean" in r]  # TRL scored through the env's reward
    assert [r["step"] for r in trained] == list(range(1, 11)) and [r[SAMPLES] for r in trained][-1] == 80
    assert [r["step"] for r in rows if ENV_REWARD in r] == [0, 10]


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, tiny_policy_config, tiny_policy, capsys):
    config = tiny_config(GRPOConfig, tmp_path, tiny_policy_config, total_episodes=32, batch_size=8, save_steps=2)
    first = train_grpo(config)
    run_dir = tmp_path / "runs" / "tiny" / "grpo"
    assert first.steps == 4 and sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2", "checkpoint-4"]  # fmt: skip
    # Make it a run killed after step 3: the last checkpoint is step 2, the record has rows up to step 3.
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-4")
    (run_dir / "summary.json").unlink()
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "running"}))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics if r["step"] <= 3))
    with pytest.raises(FileExistsError, match="--resume true"):
        train_grpo(config)

    second = train_grpo(dataclasses.replace(config, resume=True))
    assert second.finished and second.steps == 4 and second.samples == 32
    rows = read_run(run_dir)["metrics"]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # step 3 redone once, not logged twice
    assert [r["step"] for r in rows if ENV_REWARD in r] == [0, 4]
    assert second.before == first.before and read_run(run_dir)["info"]["status"] == "finished"
    capsys.readouterr()
    again = train_grpo(dataclasses.replace(config, resume=True))
    assert again.skipped and "grpo: skipped, finished run record exists" in capsys.readouterr().out


def test_a_run_whose_reward_breaks_mid_training_is_marked_failed(tmp_path, tiny_policy_config, tiny_policy):
    calls = []

    def breaks_after_the_first_evaluation(contexts, replies):
        calls.append(len(replies))
        if len(calls) > 1:  # the step-0 evaluation scores once; the first training batch breaks
            raise RuntimeError("reward server went away")
        return [0.0] * len(replies)

    env_id = register_reward_env("rlhf-test/Breaks-v0", CallableReward(breaks_after_the_first_evaluation))
    config = tiny_config(GRPOConfig, tmp_path, tiny_policy_config, env_id=env_id, env_kwargs={}, total_episodes=16,
                         batch_size=8)  # fmt: skip
    with pytest.raises(Exception, match="reward server went away"):
        train_grpo(config)
    info = read_run(tmp_path / "runs" / "tiny" / "grpo")["info"]
    assert info["status"] == "failed" and "reward server went away" in info["status_reason"]


@pytest.mark.slow
def test_suppressed_tokens_are_masked_in_the_policy_and_in_trls_reference(
    tmp_path, tiny_policy_config, tiny_policy, monkeypatch
):
    """The policy samples with its ``suppress_tokens``; TRL computes GRPO's log-probabilities (policy and the
    reference it loads itself) by forward passes, which must give those tokens no probability either."""
    import torch
    import trl
    from transformers import GenerationConfig

    folder = tmp_path / "policy"
    shutil.copytree(tiny_policy.path, folder)
    generation = GenerationConfig.from_pretrained(folder)
    generation.suppress_tokens = suppressed = [5, 6, 7]
    generation.save_pretrained(folder)
    trainers = []

    class Recorded(trl.GRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(trl, "GRPOTrainer", Recorded)
    config = tiny_config(GRPOConfig, tmp_path, tiny_policy_config, policy=str(folder), env_id=WORDY_ENV, env_kwargs={},
                         total_episodes=8, batch_size=8, num_generations=4)  # fmt: skip
    assert train_grpo(config).finished
    (trainer,) = trainers
    ids = torch.tensor([[1, 2, 3, 4]])
    for model in (trainer.model, trainer.ref_model):
        logits = model(ids.to(model.device)).logits
        assert (logits[..., suppressed] <= -1e3).all() and (logits[..., 8:] > -1e3).all()
