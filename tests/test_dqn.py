"""DQN (stable-baselines3) on the select env: a tiny run trains, evaluates like PPO and leaves a run record."""

import numpy as np

from rlhf.runs.evaluation import ENV_REWARD, GOLD_REWARD, SAMPLES
from rlhf.runs.records import read_run
from rlhf.training.dqn import DQNConfig, train_dqn


def test_tiny_dqn_run_has_eval_metrics_and_is_skipped_when_done(tmp_path, capsys):
    config = DQNConfig(
        runs_dir=str(tmp_path), group="g", wandb_mode="disabled", num_contexts=16, feature_dim=16,
        total_timesteps=300, learning_starts=50, buffer_size=500, batch_size=16, target_update_interval=50,
        net_arch=[16], eval_every=100, log_every=100, eval_contexts=6,
    )  # fmt: skip
    result = train_dqn(config)
    run = read_run(result.run_dir)
    assert run["info"]["status"] == "finished" and run["info"]["algo"] == "dqn" and "dqn" in run["info"]["tags"]
    evals = [row for row in run["metrics"] if ENV_REWARD in row]
    assert [row[SAMPLES] for row in evals] == [0, 100, 200, 300]
    assert all(np.isfinite(row[ENV_REWARD]) and np.isfinite(row[GOLD_REWARD]) for row in evals)
    train_rows = [row for row in run["metrics"] if "train/epsilon" in row]
    assert len(train_rows) == 3 and train_rows[-1]["train/epsilon"] < train_rows[0]["train/epsilon"]
    assert "train/loss" in train_rows[-1]
    assert len([row for row in run["samples"] if row["step"] == 300]) == 6
    assert run["summary"][SAMPLES] == 300 and (tmp_path / "g" / "dqn" / "dqn_model.zip").is_file()

    assert train_dqn(config).skipped
    assert "skipped, finished run record exists" in capsys.readouterr().out
