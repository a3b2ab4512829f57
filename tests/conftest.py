"""Shared fixtures: no network, no wandb server, and one tiny policy built once per test session."""

import dataclasses
import os
import textwrap
from pathlib import Path

# Set before transformers/wandb are imported: a hub lookup here takes ~1 minute to fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from rlhf.models.policy import PolicyConfig, ensure_policy  # noqa: E402

# BPE, the old default: these tests exercise the toolkit with any tokenizer, and at this size a word vocabulary
# would hold too few words (test_policy.py tests the word tokenizer itself). Corpus text only, batches of 32:
# ALICE's pairs and the default's small batches would triple the build for nothing the tests look at.
TINY_POLICY = dict(
    tokenizer="bpe", vocab_size=512, n_layer=2, n_head=2, n_embd=64, n_positions=128, epochs=3, batch_size=32,
    pretrain_alice=False, max_repeats=0, spell_rate=0.1, learning_rate=2e-3,
)  # fmt: skip


@pytest.fixture(scope="session")
def policy_cache(request, tmp_path_factory) -> Path:
    """Where the test policies are built: pytest's cache folder, so later test sessions reuse them (the cache key
    holds the config, the corpus and the recipe version, so a changed recipe still rebuilds)."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    return cache.mkdir("rlhf-gym-cache") if cache is not None else tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_policy_config(policy_cache) -> PolicyConfig:
    """Config of the tiny offline policy (under a minute to build on 2 cores)."""
    return PolicyConfig(cache_dir=str(policy_cache), device="cpu", **TINY_POLICY)


@pytest.fixture(scope="session")
def tiny_policy(tiny_policy_config):
    """The tiny policy's report (``.path`` is its folder), built once for the whole session."""
    return ensure_policy(tiny_policy_config)


@pytest.fixture(scope="session")
def default_policy(policy_cache):
    """The offline default policy (configs/policy/default.yaml), cached like the tiny one (~210 s to build)."""
    from rlhf.config import load_config

    config = load_config(PolicyConfig, Path(__file__).resolve().parents[1] / "configs" / "policy" / "default.yaml")
    return ensure_policy(dataclasses.replace(config, cache_dir=str(policy_cache), device="cpu"))


@pytest.fixture(scope="session")
def readme_custom_env() -> str:
    """The README's custom-env example (``my_envs.py``): the first python block after its marker."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("<!-- custom-env-example -->")
    return textwrap.dedent(text[start:].split("```python\n", 1)[1].split("```", 1)[0])
