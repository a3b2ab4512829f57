"""The main job's stage list: which stages run by default, and the job says which ran and which were left out."""

from pathlib import Path

import yaml

from rlhf.pipeline import DEFAULT_STAGES, STAGES, PipelineConfig, _Progress


def test_default_job_runs_the_new_methods_that_fit_and_names_the_rest(capsys):
    assert PipelineConfig().stages == list(DEFAULT_STAGES)
    assert yaml.safe_load(Path("configs/pipeline/default.yaml").read_text())["stages"] == list(DEFAULT_STAGES)
    progress = _Progress(DEFAULT_STAGES)
    progress.run("grpo", lambda: (None, "trained"))
    assert progress.run("rloo", lambda: (None, "trained")) is None  # not in the default stages: not called
    progress.summary()
    out = capsys.readouterr().out
    assert "rloo: not in stages, skipped (add it to --stages to run it)" in out
    left_out = [s for s in STAGES if s not in DEFAULT_STAGES]
    assert "stages run: grpo; left out: " + ", ".join(left_out) in out.replace("\n", " ")
