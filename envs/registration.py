"""Environment ids under the ``rlhf/`` namespace, and the helper users call to add their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ENTRY_POINTS = {
    "dialogue": "rlhf.envs.dialogue:DialogueEnv",
    "select": "rlhf.envs.select:DialogueSelectEnv",
}

# id -> (kind, default kwargs)
TOOLKIT_ENVS: dict[str, tuple[str, dict[str, Any]]] = {
    "rlhf/Dialogue-v0": ("dialogue", {}),
    "rlhf/DialogueSelect-v0": ("select", {}),
    "rlhf/DialogueSelectIndex-v0": ("select", {"observation": "index"}),
}


def register_envs() -> None:
    """Register the toolkit's environments with gymnasium (idempotent)."""
    import gymnasium

    for env_id, (kind, kwargs) in TOOLKIT_ENVS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=ENTRY_POINTS[kind], kwargs=kwargs)


def register_reward_env(
    env_id: str,
    reward: Any,
    *,
    prompts: Any = None,
    simulator: Any = None,
    kind: str = "dialogue",
    **env_kwargs: Any,
) -> str:
    """Register ``env_id`` as a dialogue env with your own reward, so ``gymnasium.make(env_id)`` builds it.

    ``reward`` is a callable ``fn(contexts, replies) -> array`` (wrap a per-pair function in
    :class:`rlhf.rewards.base.CallableReward` with ``batched=False``), a :class:`~rlhf.rewards.base.RewardFunction`,
    a gold scorer name or a reward-model folder. ``kind`` is ``"dialogue"`` (free-text replies,
    :class:`~rlhf.envs.dialogue.DialogueEnv`) or ``"select"`` (choose a candidate,
    :class:`~rlhf.envs.select.DialogueSelectEnv`); ``prompts``, ``simulator`` (``None`` keeps the env's default)
    and ``env_kwargs`` go to its constructor. Objects travel in the registered kwargs, not as strings.
    Registering an id again replaces it (gymnasium warns). Returns ``env_id``.
    """
    import inspect

    import gymnasium

    if kind not in ENTRY_POINTS:
        raise ValueError(f"kind must be one of {sorted(ENTRY_POINTS)}, got {kind!r}")
    entry_point = ENTRY_POINTS[kind]
    module_name, class_name = entry_point.split(":")
    env_class = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    known = set(inspect.signature(env_class).parameters)
    unknown = sorted(set(env_kwargs) - known)
    if unknown:
        raise TypeError(f"{env_id}: unknown argument(s) {unknown} for {class_name}; known: {sorted(known)}")
    if isinstance(reward, str) and not Path(reward).exists():
        from rlhf.rewards.resolve import resolve_reward

        resolve_reward(reward)  # an unknown scorer name fails here, naming it, not at gymnasium.make
    kwargs = dict(env_kwargs, reward=reward, prompts=prompts)
    if simulator is not None:
        kwargs["simulator"] = simulator
    gymnasium.register(id=env_id, entry_point=entry_point, kwargs=kwargs)
    return env_id
