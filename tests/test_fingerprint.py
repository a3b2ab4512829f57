"""Runs keyed on what made them: a changed setting or input re-runs a stage, an unchanged one is reused."""

import dataclasses
import json
import os
import shutil
import types
import typing
from pathlib import Path

import pytest
import yaml

from rlhf.config import load_config
from rlhf.models.policy import PolicyConfig, load_policy, save_pretrained_atomically
from rlhf.pipeline import PipelineConfig
from rlhf.runs.fingerprint import FINGERPRINT_FILE, artefact_fingerprint, stage_fingerprint
from rlhf.runs.records import RunRecord, finished_run, read_run
from rlhf.training.dpo import DPOConfig
from rlhf.training.dqn import DQNConfig, train_dqn
from rlhf.training.grpo import GRPOConfig
from rlhf.training.ppo import PPOConfig, save_final_policy
from rlhf.training.qlearning import QLearningConfig, train_q_learning
from rlhf.training.reward_model import RewardModelConfig
from rlhf.training.rloo import RLOOConfig

CONFIG_CLASSES = {
    "policy": PolicyConfig,
    "reward": RewardModelConfig,
    "ppo": PPOConfig,
    "qlearning": QLearningConfig,
    "dqn": DQNConfig,
    "pipeline": PipelineConfig,
    "grpo": GRPOConfig,
    "rloo": RLOOConfig,
    "dpo": DPOConfig,
}
# configs/accelerate/ holds accelerate's own launcher files, not configs of ours.
OUR_YAMLS = sorted(p for p in Path("configs").glob("*/*.yaml") if p.parent.name != "accelerate")


def test_fingerprint_follows_settings_and_inputs_not_logging(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\nhow are you?\n")
    reward_model = tmp_path / "rm"
    reward_model.mkdir()
    (reward_model / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": "rm-1"}))
    base = QLearningConfig(prompts=str(prompts), reward_model=str(reward_model))
    first = stage_fingerprint(base)["fingerprint"]
    assert stage_fingerprint(dataclasses.replace(base, wandb_mode="disabled", runs_dir="x"))["fingerprint"] == first
    assert stage_fingerprint(dataclasses.replace(base, learning_rate=0.4))["fingerprint"] != first
    prompts.write_text("hello\nhow are you today?\n")  # same path, other prompts
    assert stage_fingerprint(base)["fingerprint"] != first
    second = stage_fingerprint(base)["fingerprint"]
    (reward_model / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": "rm-2"}))  # a retrained reward model
    assert stage_fingerprint(base)["fingerprint"] != second


def test_a_path_counts_by_what_it_holds_not_how_it_is_spelled(tmp_path, monkeypatch):
    # A re-run from another directory names the same artefacts by absolute paths: nothing may retrain.
    monkeypatch.chdir(tmp_path)
    Path("prompts.txt").write_text("hello\n")
    Path("rm").mkdir()
    Path("rm", FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": "rm-1"}))
    relative = stage_fingerprint(QLearningConfig(prompts="prompts.txt", reward_model="rm"), policy="rm")
    rm = str(tmp_path / "rm")
    absolute = stage_fingerprint(QLearningConfig(prompts=str(tmp_path / "prompts.txt"), reward_model=rm), policy=rm)
    assert absolute["fingerprint"] == relative["fingerprint"]
    Path("other.txt").write_text("goodbye\n")  # another file: another input
    assert (
        stage_fingerprint(QLearningConfig(prompts="other.txt", reward_model="rm"), policy="rm")["fingerprint"]
        != (relative["fingerprint"])
    )


def _finished(tmp_path, algo, fingerprint):
    record = RunRecord.start(algo=algo, env_id="e", config={}, runs_dir=tmp_path, group="g", name="run",
                             wandb_mode="disabled", fingerprint=fingerprint)  # fmt: skip
    record.finish({"x": 1})
    return record.folder


def test_a_saved_policy_is_the_same_input_when_copied_and_a_new_one_when_its_weights_change(tmp_path, tiny_policy):
    """A PPO round's policy keys on its content: ``cp -r artifacts elsewhere`` gives every file a new
    modification time, which used to read as a new policy and relabel and retrain every stage after it."""
    import torch

    model, tokenizer = load_policy(tiny_policy.path, device="cpu")
    summary = {"steps": 1, "samples": 8, "seconds": 1.0, "before": {}, "after": {}}
    saved = save_final_policy(tmp_path / "policy", model, tokenizer, PPOConfig(), summary)
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy, copy_function=shutil.copy)
    for file in copy.iterdir():
        os.utime(file, ns=(10**18, 10**18))  # 2001: the copy's times surely differ from the save's
    assert artefact_fingerprint(copy) == artefact_fingerprint(saved)
    # Edited in place (another tool saving into the folder, a swapped file): a new input, not the stored digest.
    (copy / "generation_config.json").write_text((copy / "generation_config.json").read_text() + "\n")
    assert artefact_fingerprint(copy) != artefact_fingerprint(saved)

    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_final_policy(tmp_path / "changed", model, tokenizer, PPOConfig(), summary)
    assert artefact_fingerprint(tmp_path / "changed") != artefact_fingerprint(saved)
    # A reward model's folder holds its stage fingerprint, written last: a saved model has none of its own.
    save_pretrained_atomically(model, tokenizer, tmp_path / "reward_model")
    assert not (tmp_path / "reward_model" / FINGERPRINT_FILE).exists()


def test_finished_run_is_reused_only_with_its_fingerprint(tmp_path, capsys):
    old = stage_fingerprint({"lr": 0.1}, algo="ppo")
    folder = _finished(tmp_path, "ppo", old)
    assert finished_run(folder, fingerprint=old)["summary"] == {"x": 1}
    new = stage_fingerprint({"lr": 0.2}, algo="ppo")
    assert finished_run(folder, fingerprint=new) is None  # to be re-run...
    assert not folder.exists()  # ...and the old record kept aside, out of the report's group
    (aside,) = (tmp_path / "g" / ".superseded").iterdir()
    assert read_run(aside)["summary"] == {"x": 1}
    assert "config.lr 0.1 → 0.2" in capsys.readouterr().out


def test_a_folder_holding_another_run_is_refused_saying_what_differs(tmp_path):
    folder = _finished(tmp_path, "dqn", stage_fingerprint({"lr": 0.1}, algo="dqn"))
    with pytest.raises(
        FileExistsError, match=r"holds another run \(.*inputs.algo changed.*\): set run_name to keep both"
    ):
        finished_run(folder, fingerprint=stage_fingerprint({"lr": 0.1}, algo="ppo"))
    assert folder.exists()


def test_changing_one_setting_reruns_that_stage_only(tmp_path):
    """The pipeline's rule at tiny sizes: after a Q-learning hyperparameter changes, Q-learning trains again
    and DQN, unchanged, is reused."""
    runs = dict(runs_dir=str(tmp_path), group="g", wandb_mode="disabled", num_contexts=8, eval_contexts=6)
    q = QLearningConfig(total_steps=200, eval_every=100, **runs)
    d = DQNConfig(total_timesteps=64, learning_starts=16, eval_every=64, **runs)
    assert not train_q_learning(q).skipped and not train_dqn(d).skipped
    assert train_q_learning(q).skipped and train_dqn(d).skipped
    assert not train_q_learning(dataclasses.replace(q, learning_rate=0.3)).skipped
    assert train_dqn(d).skipped
    assert train_q_learning(dataclasses.replace(q, learning_rate=0.3)).skipped


def _accepts(annotation, value) -> bool:
    if annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, origin or annotation)


@pytest.mark.parametrize("path", OUR_YAMLS, ids=str)
def test_every_shipped_yaml_loads_into_its_dataclass_with_the_fields_types(path):
    cls = CONFIG_CLASSES[path.parent.name]
    load_config(cls, path)  # no unknown key
    hints = typing.get_type_hints(cls)
    for key, value in (yaml.safe_load(path.read_text()) or {}).items():
        assert _accepts(hints[key], value), f"{path}: {key}: {value!r} is not a {hints[key]}"  # e.g. 3e-4 reads as str
