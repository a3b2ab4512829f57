"""``rlhf-gym``: subcommands, help, plain errors with status 2, and the same settings from any directory."""

import dataclasses
import json
from pathlib import Path

import pytest

from rlhf.cli import COMMANDS, PIPELINE, main, parse_command
from rlhf.config import describe_fields, load_config

REPO = Path(__file__).parents[1]


def test_every_stage_is_a_subcommand():
    stages = ["policy", "label", "reward-model", "ppo", "grpo", "rloo", "dpo", "qlearning", "dqn", "report", "chat"]
    assert list(COMMANDS) == stages


def test_help_lists_every_field_with_its_default_and_meaning(capsys):
    from rlhf.training.ppo import PPOConfig

    assert main(["ppo", "--help"]) == 0
    text = capsys.readouterr().out
    for name, *_ in describe_fields(PPOConfig):
        assert f"--{name} (" in text
    assert "--kl_coef (float) = 0.085 (dataclass default 0.05)" in text  # the shipped YAML's value, and the dataclass's
    assert "torch CPU threads for this process" in text  # the field's comment is its meaning


def test_help_into_a_pipe_closed_early_is_no_error():
    """``rlhf-gym --help | head -1``: a reader that has gone is no error (no BrokenPipeError traceback, status 0)."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the help is printed: every write meets a closed pipe
    code = "import sys; from rlhf.cli import main; sys.exit(main(['ppo', '--help']))"
    done = subprocess.run([sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    os.close(write_end)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()


def test_a_user_error_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "reward.yaml"
    bad.write_text("batch_size: eight\n")
    assert main(["reward-model", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{bad}: batch_size: expected a whole number, got 'eight'" in err
    with pytest.raises(Exception, match="batch_size"):  # --debug: the exception itself, with its traceback
        main(["reward-model", "--config", str(bad), "--debug"])
    assert main(["label", "--count", "ten"]) == 2 and "--count" in capsys.readouterr().err
    assert main(["label", "--count", "-3"]) == 2 and "got '-3'" in capsys.readouterr().err
    for method in ("ppo", "grpo", "dpo"):  # refused before the default policy is built (~4 minutes, into ./artifacts)
        cache = tmp_path / method / "cache"
        assert main([method, "--env_id", "rlhf/Nope-v0", "--runs_dir", str(tmp_path), "--policy_kwargs",
                     json.dumps({"cache_dir": str(cache)})]) == 2  # fmt: skip
        assert "'rlhf/Nope-v0' is not a registered environment" in capsys.readouterr().err
        assert not cache.exists()
    assert main(["nope"]) == 2


def test_outside_the_repository_the_job_has_the_repositorys_settings(tmp_path, monkeypatch):
    """The shipped configs and their relative paths give the same stage settings from any directory."""
    inside = {}
    for name in ("policy_config", "reward_config", "ppo_config", "qlearning_config", "dqn_config"):
        inside[name] = dataclasses.asdict(_stage(name, REPO))
    monkeypatch.chdir(tmp_path)
    pipeline, _ = parse_command(PIPELINE, [])
    for name, settings in inside.items():
        assert dataclasses.asdict(_stage(name, tmp_path, pipeline)) == settings, name
    ppo = _stage("ppo_config", tmp_path, pipeline)
    assert (ppo.total_episodes, ppo.learning_rate, ppo.kl_coef) == (480, 3e-4, 0.085)


def _stage(name, where, pipeline=None):
    from rlhf.models.policy import PolicyConfig
    from rlhf.training.dqn import DQNConfig
    from rlhf.training.ppo import PPOConfig
    from rlhf.training.qlearning import QLearningConfig
    from rlhf.training.reward_model import RewardModelConfig

    classes = dict(policy_config=PolicyConfig, reward_config=RewardModelConfig, ppo_config=PPOConfig,
                   qlearning_config=QLearningConfig, dqn_config=DQNConfig)  # fmt: skip
    stage = name.removesuffix("_config")
    path = getattr(pipeline, name) if pipeline else where / "configs" / stage / "default.yaml"
    config = load_config(classes[name], path)
    if isinstance(config, RewardModelConfig):  # a path: compare the settings it leads to
        config = dataclasses.replace(config, policy_config=str(load_config(PolicyConfig, config.policy_config)))
    return config


def test_report_alone_builds_no_policy(tmp_path, monkeypatch, capsys):
    import rlhf.models.policy
    from rlhf.runs.records import RunRecord

    record = RunRecord.start(algo="ppo", env_id="rlhf/Dialogue-v0", config={}, group="g", runs_dir=tmp_path / "runs",
                             wandb_mode="disabled")  # fmt: skip
    record.log({"eval/env_reward": 0.5, "eval/gold_reward": 0.4, "samples": 8}, step=1)
    record.finish({"eval/env_reward": 0.5})

    def no_policy(*args, **kwargs):
        raise AssertionError("the report stage built a policy")

    monkeypatch.setattr(rlhf.models.policy, "ensure_policy", no_policy)
    monkeypatch.setattr("rlhf.pipeline.policy_path", no_policy)
    monkeypatch.chdir(tmp_path)
    args = ["--stages", "report", "--group", "g", "--runs_dir", "runs", "--report_source", "local"]
    assert main([*args, "--wandb_mode", "disabled"]) == 0
    assert (tmp_path / "runs" / "g" / "report" / "report.md").is_file()
