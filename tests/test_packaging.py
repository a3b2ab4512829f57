"""Registration by Gymnasium's convention: nothing of ours at interpreter start, and no name a user's project may own.

A project with its own top-level ``envs`` package (common in RL) must import its own ``envs`` and, in the
same process, make and step the toolkit's environments: with rlhf-gym installed editable (this venv) and
installed from a wheel.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USER_SCRIPT = """
import sys
assert "rlhf" not in sys.modules and "envs" not in sys.modules, "imported at interpreter start"
import envs
assert envs.OWNER == "user", envs.__file__
import gymnasium
env = gymnasium.make("rlhf:rlhf/Dialogue-v0", reward="length", gold=None)  # gymnasium imports rlhf first
obs, _ = env.reset(seed=0)
_, reward, terminated, truncated, _ = env.step("Hello there, friend")
select = gymnasium.make("rlhf/DialogueSelect-v0", reward="length", gold=None, num_contexts=4)
select.reset(seed=0)
select.step(0)
import envs as again
import rlhf
import rlhf.envs
assert again is envs and sys.modules["envs"].OWNER == "user" and rlhf.envs is not envs
print(rlhf.__file__)
print(sys.modules["envs"].__file__)
print(obs.endswith("Bot:"), reward, terminated, truncated)
"""


def user_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "envs").mkdir(parents=True)
    (project / "envs" / "__init__.py").write_text('OWNER = "user"\n')
    (project / "main.py").write_text(USER_SCRIPT)
    return project


def run_user_script(project: Path, pythonpath: list[Path]) -> list[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(map(str, pythonpath)))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "main.py"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of this checkout, built offline from a copy (an in-tree build would write into the repo)."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("rlhf", "envs", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = wheels.glob("rlhf_gym-*.whl")
    return wheel


@pytest.mark.parametrize("install", ["editable", "wheel"])
def test_a_project_with_its_own_envs_package_keeps_it_and_makes_ours(tmp_path, install):
    project = user_project(tmp_path)
    pythonpath = [project]
    if install == "wheel":
        site = tmp_path / "site"
        with zipfile.ZipFile(build_wheel(tmp_path)) as wheel:
            names = wheel.namelist()
            wheel.extractall(site)
        assert not any(n.startswith("envs/") or n.endswith(".pth") for n in names), names
        assert "rlhf/envs/dialogue.py" in names and "rlhf/configs/ppo/default.yaml" in names
        pythonpath = [site, project]
    rlhf_file, envs_file, result = run_user_script(project, pythonpath)
    assert Path(envs_file) == project / "envs" / "__init__.py"
    expected = tmp_path / "site" if install == "wheel" else ROOT
    assert Path(rlhf_file).is_relative_to(expected), rlhf_file
    assert result.split() == ["True", "1.0", "True", "False"]
