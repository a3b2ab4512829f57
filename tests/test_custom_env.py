"""A user's own reward env, by id, through every trainer's script: the README's example as a new user runs it."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD
from rlhf.runs.records import read_run

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "my_envs:my/Polite-v0"  # Gymnasium's convention: import my_envs, then make my/Polite-v0
PROMPTS = {"Can you help me?", "I lost my keys.", "What time is it?", "Hello!"}


def run_script(script: str, cwd: Path, *args: str) -> str:
    """``python scripts/<script> args`` in a fresh interpreter, from ``cwd`` (where my_envs.py lies)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_MODE="disabled", PYTHONPATH=str(cwd))
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def project(tmp_path, readme_custom_env) -> Path:
    (tmp_path / "my_envs.py").write_text(readme_custom_env)
    return tmp_path


def check_record(run_dir: Path, polite) -> list[dict]:
    """The run was evaluated on the env's own prompts, with its own reward and gold (not the toolkit's)."""
    from rlhf.rewards.gold import gold_scorer

    run = read_run(run_dir)
    rows = [row for row in run["samples"] if "reply" in row]
    assert rows and {row["context"] for row in rows} <= PROMPTS
    sentiment = gold_scorer("sentiment")
    for row in rows:
        assert row["env_reward"] == pytest.approx(polite((row["context"],), row["reply"]))
        assert row["gold_reward"] == pytest.approx(sentiment([(row["context"],)], [row["reply"]])[0])
    assert ENV_REWARD in run["summary"].get("after", run["summary"])
    return rows


@pytest.mark.slow
def test_the_readme_custom_env_trains_ppo_by_id(project, tiny_policy_config, tiny_policy):
    # Four prompts and batches of eight: drawn with replacement. The YAML's env_kwargs are empty, so the env
    # keeps its polite reward and sentiment gold.
    out = run_script(
        "train_ppo.py", project, "--config", str(ROOT / "configs/ppo/tiny.yaml"), "--env_id", ENV_ID,
        "--policy_kwargs.cache_dir", tiny_policy_config.cache_dir, "--runs_dir", str(project / "runs"),
        "--total_episodes", "16", "--batch_size", "8", "--eval_contexts", "4",
    )  # fmt: skip
    assert "env reward 'polite'" in out and "drawn with replacement" in out
    polite = runpy.run_path(str(project / "my_envs.py"))["polite"]
    run_dir = project / "runs" / "tiny" / "ppo"
    check_record(run_dir, polite)
    assert read_run(run_dir)["summary"]["steps"] == 2 and GOLD_REWARD in read_run(run_dir)["summary"]["after"]


@pytest.mark.slow
def test_the_readme_custom_env_trains_the_baselines_by_id(project):
    polite = runpy.run_path(str(project / "my_envs.py"))["polite"]
    common = (
        "--env_id",
        ENV_ID,
        "--runs_dir",
        str(project / "runs"),
        "--wandb_mode",
        "disabled",
        "--eval_contexts",
        "4",
    )
    run_script("train_qlearning.py", project, "--config", str(ROOT / "configs/qlearning/default.yaml"), *common,
               "--total_steps", "40", "--eval_every", "20")  # fmt: skip
    run_script("train_dqn.py", project, "--config", str(ROOT / "configs/dqn/default.yaml"), *common,
               "--total_timesteps", "40", "--learning_starts", "8", "--batch_size", "8", "--eval_every", "20",
               "--log_every", "20", "--target_update_interval", "10")  # fmt: skip
    for algo in ("qlearning", "dqn"):
        check_record(project / "runs" / "default" / algo, polite)
