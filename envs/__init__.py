"""Gymnasium dialogue environments of rlhf-gym, registered under the ``rlhf/`` namespace.

The environment classes load on first use: this package is imported whenever gymnasium is (see
``envs/_gymnasium_hook.py``), so importing it must stay cheap.
"""

from __future__ import annotations

from typing import Any

from envs.registration import register_envs, register_reward_env

__all__ = ["DialogueEnv", "DialogueSelectEnv", "register_envs", "register_reward_env"]

_LAZY = {"DialogueEnv": "envs.dialogue", "DialogueSelectEnv": "envs.select"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")
