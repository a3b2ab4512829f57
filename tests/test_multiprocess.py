"""Two processes through ``accelerate launch`` (CPU, gloo): the same global batch, one run record."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf.runs.evaluation import ENV_REWARD, SAMPLES
from rlhf.runs.records import read_run


@pytest.mark.slow
def test_grpo_on_two_processes_keeps_the_global_batch_and_writes_one_record(tmp_path, tiny_policy_config, tiny_policy):
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate), "launch", "--config_file", "configs/accelerate/multi_process.yaml", "--num_processes", "2",
        "scripts/train_grpo.py", "--config", "configs/grpo/tiny.yaml",
        "--policy_kwargs.cache_dir", tiny_policy_config.cache_dir, "--runs_dir", str(tmp_path / "runs"),
        "--wandb_mode", "disabled", "--total_episodes", "16", "--batch_size", "8", "--num_generations", "4",
        "--save_steps", "2",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
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
