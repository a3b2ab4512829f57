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


def resolve_env_id(env_id: str) -> str:
    """The registered id of ``env_id``, importing ``module`` first for Gymnasium's ``"module:id"`` form.

    Raises ``ValueError`` naming the id (and the module, when it does not import), with the ids registered.
    """
    import importlib

    import gymnasium

    module, sep, bare = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"env_id {env_id!r}: cannot import module {module!r} ({exc})") from exc
    if bare not in gymnasium.registry:
        toolkit = sorted(i for i in gymnasium.registry if i.startswith("rlhf/"))
        hint = "" if sep else "; write 'module:id' to import the module that registers it"
        raise ValueError(f"env_id {env_id!r} is not a registered environment; the rlhf/ ids are {toolkit}{hint}")
    return bare


def dialogue_env_kwargs(env_id: str) -> dict[str, Any]:
    """The keyword arguments ``env_id`` is registered with, for an env of this toolkit (or a subclass).

    The baselines build their select env from these, so a registered env's reward, prompts and gold reach
    them. Raises ``ValueError`` when ``env_id`` is not a dialogue env.
    """
    import gymnasium
    from rlhf.envs.dialogue import DialogueEnv

    spec = gymnasium.spec(resolve_env_id(env_id))
    entry = spec.entry_point
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        entry = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    if not (isinstance(entry, type) and issubclass(entry, DialogueEnv)):
        raise ValueError(f"env_id {env_id!r} is not a dialogue environment of rlhf-gym (entry: {spec.entry_point})")
    return dict(spec.kwargs)


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
