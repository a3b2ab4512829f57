import json

import pytest

from rlhf.runs.records import RunRecord, finished_run, read_run


def _start(tmp_path, **kw):
    defaults = dict(algo="ppo", env_id="rlhf/Dialogue-v0", config={"lr": 1e-3}, group="exp", runs_dir=tmp_path)
    return RunRecord.start(**{**defaults, **kw})


def test_record_holds_metrics_samples_and_summary(tmp_path):
    record = _start(tmp_path, wandb_mode="disabled")
    record.log({"eval/env_reward": 0.5, "samples": 8}, step=1)
    record.log_samples([{"context": "Hi", "reply": "Hello", "env_reward": 0.5}], step=1)
    record.finish({"final": 1.0})
    run = read_run(tmp_path / "exp" / "ppo")
    assert run["info"]["status"] == "finished" and run["info"]["tags"][:2] == ["ppo", "rlhf/Dialogue-v0"]
    assert run["metrics"][0]["eval/env_reward"] == 0.5 and run["metrics"][0]["step"] == 1
    assert run["samples"][0]["reply"] == "Hello"
    assert run["summary"] == {"final": 1.0}


def test_existing_record_is_not_overwritten_but_can_resume(tmp_path):
    first = _start(tmp_path, wandb_mode="disabled")
    first.log({"x": 1}, step=1)
    with pytest.raises(FileExistsError, match="exp"):
        _start(tmp_path, wandb_mode="disabled")
    again = _start(tmp_path, wandb_mode="disabled", resume=True)
    again.log({"x": 2}, step=2)
    assert [m["step"] for m in read_run(again.folder)["metrics"]] == [1, 2]


def test_half_written_record_reads_and_a_corrupt_line_is_named(tmp_path):
    record = _start(tmp_path, wandb_mode="disabled")
    record.log({"x": 1}, step=1)
    with (record.folder / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "x"')  # killed mid-write
    run = read_run(record.folder)
    assert run["info"]["status"] == "running" and len(run["metrics"]) == 1 and run["summary"] == {}
    (record.folder / "metrics.jsonl").write_text('oops\n{"step": 1}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:1"):
        read_run(record.folder)
    with pytest.raises(FileNotFoundError, match="no run.json"):
        read_run(tmp_path / "missing")


def test_offline_wandb_run_carries_group_and_tags(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    record = _start(tmp_path, wandb_mode="offline", name="ppo-a")
    record.log({"eval/env_reward": 0.25}, step=3)
    record.finish({"eval/env_reward": 0.25})
    info = json.loads((record.folder / "run.json").read_text())
    assert info["wandb_id"]
    offline_runs = list((tmp_path / "wandb").glob("wandb/offline-run-*"))
    assert len(offline_runs) == 1 and info["wandb_id"] in offline_runs[0].name


def test_bad_wandb_mode_is_named(tmp_path):
    with pytest.raises(ValueError, match="wandb_mode"):
        _start(tmp_path, wandb_mode="cloud")


def test_finished_run_skips_finished_refuses_unfinished_unless_resuming(tmp_path):
    record = _start(tmp_path, wandb_mode="disabled")
    with pytest.raises(FileExistsError, match="unfinished.*--resume true"):
        finished_run(record.folder, resume_hint="pass --resume true")
    assert finished_run(record.folder, resume=True) is None
    assert finished_run(tmp_path / "exp" / "other") is None
    record.finish({"eval/env_reward": 0.5})
    assert finished_run(record.folder)["summary"] == {"eval/env_reward": 0.5}
