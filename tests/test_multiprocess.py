"""Two processes through ``accelerate launch`` (CPU, gloo): the same global batch, one run record, for GRPO and PPO."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf.runs.evaluation import ENV_REWARD, SAMPLES
from rlhf.runs.records import read_run
from rlhf.training.checkpoints import checkpoint_dirs


def _launch(script: str, config: str, *args: str) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--config_file", "configs/accelerate/multi_process.yaml",
               "--num_processes", "2", script, "--config", config, *args]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_grpo_on_two_processes_keeps_the_global_batch_and_writes_one_record(tmp_path, tiny_policy_config, tiny_policy):
    done = _launch(
        "scripts/train_grpo.py", "configs/grpo/tiny.yaml", "--policy_kwargs.cache_dir", tiny_policy_config.cache_dir,
        "--runs_dir", str(tmp_path / "runs"), "--wandb_mode", "disabled", "--total_episodes", "16", "--batch_size", "8",
        "--num_generations", "4", "--save_steps", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("[grpo] policy") == 2  # two processes, each with its own env and policy copy
    run_dir = tmp_path / "runs" / "tiny" / "grpo"
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir()) == ["grpo"]
    run = read_run(run_dir)
    assert run["info"]["status"] == "finished" and run["summary"]["processes"] == 2
    trained = [r for r in run["metrics"] if "loss" in r]
    # 8 replies an update in all (4 a process), as in one process: 2 updates, each logged once.
    assert [(r["step"], r[SAMPLES]) for r in trained] == [(1, 8), (2, 16)]
    assert [r["step"] for r in run["metrics"] if ENV_REWARD in r] == [0, 2]
    assert json.loads((run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2


@pytest.mark.slow
def test_ppo_on_two_processes_keeps_the_global_batch_writes_once_and_resumes(tmp_path, tiny_policy_config, tiny_policy):
    args = ["--policy_kwargs.cache_dir", tiny_policy_config.cache_dir, "--runs_dir", str(tmp_path / "runs"),
            "--wandb_mode", "disabled", "--total_episodes", "32", "--batch_size", "8", "--save_steps", "2",
            "--normalize_reward", "true"]  # fmt: skip
    first = _launch("scripts/train_ppo.py", "configs/ppo/tiny.yaml", *args, "--stop_after_steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    # Two processes, each with its own env and policy copy, optimising the same reward: the main one's normalisation.
    # (Two processes share one stdout pipe: a print's text and its newline are two writes, so lines may run together.)
    started = re.findall(r"\[ppo\] policy .*? prompts", first.stdout)
    assert len(started) == 2 and started[0] == started[1] and "normalised as" in started[0]
    run_dir = tmp_path / "runs" / "tiny" / "ppo"
    assert read_run(run_dir)["info"]["status"] == "interrupted"
    assert [p.name for p in checkpoint_dirs(run_dir)] == ["step-000002"]

    second = _launch("scripts/train_ppo.py", "configs/ppo/tiny.yaml", *args, "--resume", "true")
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir()) == ["ppo"]
    run = read_run(run_dir)
    assert run["info"]["status"] == "finished" and run["summary"]["processes"] == 2
    assert run["summary"]["steps"] == 4 and run["summary"]["samples"] == 32
    trained = [r for r in run["metrics"] if "loss/policy_avg" in r]
    # 8 replies an update in all (4 a process), as in one process: 4 updates over the two calls, each logged once.
    assert [(r["step"], r[SAMPLES]) for r in trained] == [(1, 8), (2, 16), (3, 24), (4, 32)]
    assert [r["step"] for r in run["metrics"] if ENV_REWARD in r] == [0, 4]  # before and after, by the main process
    assert [p.name for p in checkpoint_dirs(run_dir)] == ["step-000002", "step-000004"]
    state = json.loads((run_dir / "checkpoints" / "step-000004" / "state.json").read_text())
    assert state == {"step": 4, "samples": 32, "kl_coef": 0.05}
    assert second.stdout.count("[ppo] final policy") == 1 and (run_dir / "final" / "config.json").is_file()
