"""Gymnasium dialogue environments of rlhf-gym, registered under the ``rlhf/`` namespace.

This folder is installed as ``rlhf.envs`` (never as a top-level ``envs``, which a user's own project
may have). ``import rlhf`` registers the ids; the environment classes load on first use.
"""

from __future__ import annotations

from typing import Any

from rlhf.envs.registration import register_envs, register_reward_env

__all__ = ["DialogueEnv", "DialogueSelectEnv", "register_envs", "register_reward_env"]

_LAZY = {"DialogueEnv": "rlhf.envs.dialogue", "DialogueSelectEnv": "rlhf.envs.select"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlhf.envs' has no attribute {name!r}")
