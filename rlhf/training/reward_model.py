"""A learned reward model: preferences in, an ``AutoModelForSequenceClassification`` folder out.

The model has one output and starts from the policy's backbone (or any model name or folder), with
a fresh score head. TRL's ``RewardTrainer`` trains it on the Bradley-Terry loss
``-log σ(r(chosen) - r(rejected))``. The pairs are tokenized here rather than by the trainer, which
would append an eos token: the model must see exactly ``render_exchange(context, reply)``, the text
:class:`rlhf.rewards.base.RewardModelScorer` scores, truncated the same way (from the left).

Evaluation loads the saved folder with ``RewardModelScorer`` and reports pairwise accuracy on the
held-out pairs and the Spearman rank correlation between its scores and the gold scorer's on the
held-out replies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.config import ConfigError, load_config
from rlhf.data.chat import clean_turn, render_exchange
from rlhf.data.corpus import context_key, corpus_fingerprint
from rlhf.data.preferences import corpus_comparisons, read_preferences, split_preferences
from rlhf.errors import TrainingError
from rlhf.models.policy import (
    DEFAULT_POLICY,
    PolicyConfig,
    context_window,
    ensure_policy,
    resolve_device,
    save_pretrained_atomically,
)
from rlhf.rewards.base import RewardFunction
from rlhf.rewards.labeller import label_synthetic_preferences
from rlhf.rewards.resolve import resolve_reward
from rlhf.rewards.reward_model import RewardModelScorer
from rlhf.runs.fingerprint import FINGERPRINT_FILE, artefact_fingerprint, differences, stage_fingerprint
from rlhf.runs.records import RunRecord, RunSettings, marks_failure, run_folder

SYNTHETIC = "synthetic"
POLICY_BACKBONE = "policy"


@dataclass
class RewardModelConfig(RunSettings):
    """Preferences (synthetic or a file/dataset), the reward model to train on them, and where it goes."""

    # The policy samples the synthetic replies and, by default, gives the reward model its backbone.
    policy: str = DEFAULT_POLICY  # "default" (built from policy_config) or a causal-LM name/folder
    policy_config: str = "configs/policy/default.yaml"
    base_model: str = POLICY_BACKBONE  # "policy", or any model name/folder to start the reward model from
    tokenizer: str | None = None  # None: the base model's own tokenizer
    # Preferences: "synthetic" (the gold labeller) or a JSONL/CSV/Parquet file or a dataset name/folder.
    preferences: str = SYNTHETIC
    dataset_split: str = "train"
    max_rows: int | None = None  # read at most this many rows of a file or dataset
    # Held-out pairs: a file, folder or dataset of their own (its heldout_split; hh-rlhf's "test"), or, when
    # None, heldout_fraction of the training pairs held out by prompt.
    heldout_preferences: str | None = None
    heldout_split: str = "test"
    heldout_fraction: float = 0.2
    preferences_dir: str = "artifacts/preferences"
    # Synthetic labeller (preferences: synthetic); the gold scorer also grades the held-out replies.
    # It labels only the training side of the environments' context split (their heldout_fraction and seed)
    # and none of the held-out prompts of the env's own prompt source, so evaluation contexts stay unseen.
    context_heldout_fraction: float = 0.1
    context_seed: int = 0
    prompts: str | None = None  # the env's prompt source (None: the corpus)
    gold: str = "default"
    num_contexts: int = 800
    samples_per_context: int = 4
    include_continuation: bool = True
    corpus_replies: int = 4
    margin: float = 0.3
    pairs_per_context: int = 4
    max_new_tokens: int = 24
    temperature: float = 0.5  # as PPO, GRPO and RLOO sample: label the replies the policy will be trained on
    # Preference-model pretraining (Askell et al. 2021): before the preferences, the base model learns the
    # same loss on comparisons cut from the training side of the corpus split (a context's real reply against
    # others'; pmp_swaps more per context with a word it shares with its reply swapped for another in both,
    # against a reply that holds a swapped-in word the context lacks),
    # built once and cached under cache_dir. Off by default: at the default learning_rate it buys nothing
    # measurable for its cost (docs/BENCHMARKS.md, "Reward models that read the context").
    pmp: bool = False
    pmp_per_context: int = 2
    pmp_hard_fraction: float = 0.0
    pmp_swaps: int = 8
    pmp_epochs: float = 1.0
    pmp_learning_rate: float = 1e-3
    pmp_batch_size: int = 32
    cache_dir: str = "artifacts/cache"
    # The relevance term (rlhf.models.context_match): the score adds how well the reply's words match the last
    # user turn's (late interaction over the backbone's token embeddings), which a small backbone does not learn
    # from the pairs alone. GPT-2 bases only; false: the plain GPT2ForSequenceClassification.
    context_match: bool = True
    match_scale: float = 1.0  # the relevance term's weight at the start (learned from there)
    # Training
    epochs: float = 2.0
    learning_rate: float = 1e-3
    batch_size: int = 16
    max_length: int = 64
    output_dir: str = "artifacts/reward_model"
    seed: int = 0
    device: str = "auto"


@dataclass
class RewardModelReport:
    """Where the reward model is and how well it ranks held-out preferences."""

    path: str
    pairwise_accuracy: float
    spearman: float
    train_pairs: int
    heldout_pairs: int
    heldout_replies: int
    stats: dict[str, Any]
    preferences: str
    seconds: float
    reused: bool


def resolve_policy(config: RewardModelConfig) -> str:
    """Folder or name of the policy: the offline default is built (or reused) from ``policy_config``."""
    if config.policy != DEFAULT_POLICY:
        return config.policy
    policy_config = load_config(PolicyConfig, config.policy_config) if config.policy_config else PolicyConfig()
    return ensure_policy(policy_config).path


def label_preferences(config: RewardModelConfig, policy: str | None = None) -> Path:
    """The synthetic preference file for ``config`` (labelled now, or reused from ``preferences_dir``)."""
    policy = policy or resolve_policy(config)
    return label_synthetic_preferences(
        policy,
        config.preferences_dir,
        gold=config.gold,
        num_contexts=config.num_contexts,
        samples_per_context=config.samples_per_context,
        include_continuation=config.include_continuation,
        corpus_replies=config.corpus_replies,
        margin=config.margin,
        pairs_per_context=config.pairs_per_context,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        seed=config.seed,
        heldout_fraction=config.context_heldout_fraction,
        split_seed=config.context_seed,
        prompts=config.prompts,
        device=config.device,
    )


def load_preference_split(config: RewardModelConfig, policy: str | None = None, labelled: Path | None = None):
    """(train, held-out, stats, source) for ``config``: labelled synthetically (or the file ``labelled`` that
    :func:`label_preferences` already returned) or read from the source."""
    if config.preferences == SYNTHETIC:
        source = labelled or label_preferences(config, policy)
        records, stats = read_preferences(source)
    else:
        source = config.preferences
        records, stats = read_preferences(source, split=config.dataset_split, limit=config.max_rows)
    if config.heldout_preferences is None:
        if len(records) < 2:
            raise ValueError(f"{stats}: need at least 2 preference pairs to train and evaluate a reward model")
        train, heldout = split_preferences(records, config.heldout_fraction, config.seed)
        return train, heldout, stats, str(source)
    heldout, heldout_stats = read_preferences(config.heldout_preferences, split=config.heldout_split)
    if not heldout:
        raise ValueError(f"{heldout_stats}: heldout_preferences holds no preference pair to evaluate on")
    # Evaluation stays on contexts the model never trained on: training pairs with a held-out context go.
    heldout_keys = {context_key(r["context"]) for r in heldout}
    train = [r for r in records if context_key(r["context"]) not in heldout_keys]
    if len(train) < len(records):
        print(f"left out {len(records) - len(train)} training pair(s) whose context is also held out")
    if not train:
        raise ValueError(f"{stats}: no training pair left whose context is not in {config.heldout_preferences}")
    return train, heldout, stats, str(source)


PMP_VERSION = 2  # bump when the comparisons or their training change, so old cached backbones are not reused


def pmp_dir(config: RewardModelConfig, base: str) -> Path:
    """Cache folder of the preference-model-pretrained ``base`` for ``config``: keyed on the base model's
    fingerprint, the corpus, the split and every setting the comparisons and their training read."""
    settings = {
        name: getattr(config, name)
        for name in ("pmp_per_context", "pmp_hard_fraction", "pmp_swaps", "pmp_epochs", "pmp_learning_rate",
                     "pmp_batch_size", "max_length", "seed", "context_heldout_fraction", "context_seed", "tokenizer",
                     "context_match", "match_scale")
    }  # fmt: skip
    settings.update(relevance_version(config))
    key = {"base": artefact_fingerprint(base), "corpus": corpus_fingerprint(), "version": PMP_VERSION, **settings}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(config.cache_dir) / "reward_pmp" / f"pmp-{digest}"


def ensure_pmp_backbone(config: RewardModelConfig, base: str) -> str:
    """``base`` after preference-model pretraining on corpus comparisons (:func:`corpus_comparisons`), read
    from the cache when built before; the reward model then starts from it (score head included)."""
    target = pmp_dir(config, base)
    if (target / FINGERPRINT_FILE).is_file():
        print(f"reusing preference-pretrained backbone {target}")
        return str(target)
    started = time.time()
    comparisons = corpus_comparisons(
        split="train",
        heldout_fraction=config.context_heldout_fraction,
        split_seed=config.context_seed,
        per_context=config.pmp_per_context,
        hard_fraction=config.pmp_hard_fraction,
        swaps=config.pmp_swaps,
        seed=config.seed,
    )
    print(f"preference-model pretraining on {len(comparisons)} corpus comparisons -> {target}")
    model, tokenizer = load_reward_base(
        base, config.tokenizer, config.seed, config.context_match, config.match_scale, pair_texts(comparisons)
    )
    settings = dataclasses.replace(
        config,
        epochs=config.pmp_epochs,
        learning_rate=config.pmp_learning_rate,
        batch_size=config.pmp_batch_size,
        output_dir=str(target),
        wandb_mode="disabled",
    )
    model, tokenizer, steps = _fit(settings, model, tokenizer, comparisons)
    report = {"comparisons": len(comparisons), "steps": steps, "seconds": round(time.time() - started, 1)}
    fingerprint = {"fingerprint": target.name, "base": base, "report": report}
    save_pretrained_atomically(model, tokenizer, target, {FINGERPRINT_FILE: json.dumps(fingerprint, indent=2)})
    return str(target)


def check_tokenizer_fits(model, tokenizer, model_name: str, tokenizer_name: str) -> None:
    """Refuse a tokenizer whose ids run past the model's embedding table, naming both."""
    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise ValueError(
            f"tokenizer {tokenizer_name!r} has {len(tokenizer)} tokens but model {model_name!r} embeds only "
            f"{embeddings}: use the model's own tokenizer (tokenizer: null) or a model built for this tokenizer"
        )


def model_max_length(model, max_length: int) -> int:
    """``max_length`` capped at the model's positions, so a long exchange is truncated, not an index error."""
    positions = context_window(model)
    return min(max_length, positions) if positions else max_length


def tokenize_pairs(records: Sequence[dict[str, Any]], tokenizer, max_length: int):
    """A ``datasets.Dataset`` of ``chosen_ids``/``rejected_ids``: each side is ``render_exchange(context, reply)``
    tokenized as :class:`RewardModelScorer` does (same call, truncated from the left)."""
    from datasets import Dataset

    tokenizer.truncation_side = "left"

    def ids(key: str) -> list[list[int]]:
        texts = [render_exchange(r["context"], r[key]) for r in records]
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    return Dataset.from_dict({"chosen_ids": ids("chosen"), "rejected_ids": ids("rejected")})


def pairwise_accuracy(reward: RewardFunction, records: Sequence[dict[str, Any]]) -> float:
    """Share of pairs whose chosen reply the reward scores above the rejected one (ties count half)."""
    contexts = [r["context"] for r in records]
    chosen = reward(contexts, [r["chosen"] for r in records])
    rejected = reward(contexts, [r["rejected"] for r in records])
    return float(np.mean((chosen > rejected) + 0.5 * (chosen == rejected)))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); 0 when either side is constant."""
    import pandas as pd

    ra, rb = pd.Series(a, dtype=float).rank().to_numpy(), pd.Series(b, dtype=float).rank().to_numpy()
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def pair_texts(records: Sequence[dict[str, Any]]) -> list[str]:
    """Every turn of the records' contexts and every reply, chosen or rejected, each as the chat format renders it
    after its speaker cue (one space first, so that its first word is the token the model reads there): what the
    relevance term's token weights are counted over (:func:`rlhf.models.context_match.token_weights`)."""
    return [f" {clean_turn(text)}" for r in records for text in (*r["context"], r["chosen"], r["rejected"])]


def heldout_replies(records: Sequence[dict[str, Any]]) -> tuple[list[list[str]], list[str]]:
    """Distinct (context, reply) pairs among the held-out records' chosen and rejected replies."""
    seen: dict[tuple[str, str], list[str]] = {}
    for r in records:
        for key in ("chosen", "rejected"):
            seen.setdefault((r["prompt"], r[key]), r["context"])
    return list(seen.values()), [reply for _, reply in seen]


@marks_failure
def train_reward_model(config: RewardModelConfig) -> RewardModelReport:
    """Label or read preferences, train the reward model with TRL's ``RewardTrainer``, save it with its
    tokenizer to ``config.output_dir`` and evaluate it there; reused when that folder holds a reward model
    trained under the same settings; an output folder holding anything else is kept under a new name."""
    import torch

    check_training_settings(config)
    output = Path(config.output_dir)
    eval_file = output / "eval.json"
    started = time.time()
    needs_policy = config.preferences == SYNTHETIC or config.base_model == POLICY_BACKBONE
    policy = resolve_policy(config) if needs_policy else None
    # What makes this model: its config, the preference file (labelled now, or reused) and the base model.
    preferences = label_preferences(config, policy) if config.preferences == SYNTHETIC else config.preferences
    base = policy if config.base_model == POLICY_BACKBONE else config.base_model
    fingerprint = reward_model_fingerprint(config, str(preferences), base)
    stored_file = output / FINGERPRINT_FILE
    if eval_file.is_file() and stored_file.is_file():
        stored = json.loads(stored_file.read_text())
        if stored.get("fingerprint") == fingerprint["fingerprint"]:
            report = RewardModelReport(**json.loads(eval_file.read_text()))
            report.path, report.reused = str(output), True
            print(f"reusing reward model {output}: same settings and inputs")
            return report
        print(f"{output} holds a reward model made otherwise ({differences(stored, fingerprint)}): training afresh")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        kept = set_aside(output)  # a model made otherwise, or anything else: never deleted
        print(f"{output} holds a reward model made by other settings or inputs (or other files): kept as {kept}")

    train, heldout, stats, source = load_preference_split(
        config, policy, preferences if config.preferences == SYNTHETIC else None
    )
    print(f"{stats}; {len(train)} train / {len(heldout)} held-out pairs")
    if config.pmp:  # the fingerprint above covers it: the base model and the pmp_* settings
        base = ensure_pmp_backbone(config, base)
    model, tokenizer = load_reward_base(
        base, config.tokenizer, config.seed, config.context_match, config.match_scale, pair_texts(train)
    )

    record = RunRecord.for_config(
        config, algo="reward_model", env_id=f"preferences:{config.preferences}", name=_free_run_name(config)
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    model, tokenizer, steps = _fit(config, model, tokenizer, train)
    if all(torch.equal(p.detach().cpu(), before[name].cpu()) for name, p in model.named_parameters() if name in before):
        raise TrainingError(
            f"the reward model did not change: {steps} optimizer step(s) on {len(train)} training pairs left every "
            f"weight as it was; add preference pairs or epochs, or check learning_rate ({config.learning_rate})"
        )
    save_pretrained_atomically(model, tokenizer, output)

    device = str(resolve_device(config.device))
    scorer = RewardModelScorer(output, device=device)  # scores at the length saved with the tokenizer
    accuracy = pairwise_accuracy(scorer, heldout)
    contexts, replies = heldout_replies(heldout)
    gold = resolve_reward(config.gold)
    rank_correlation = spearman(scorer(contexts, replies), gold(contexts, replies))
    report = RewardModelReport(
        path=str(output),
        pairwise_accuracy=round(accuracy, 4),
        spearman=round(rank_correlation, 4),
        train_pairs=len(train),
        heldout_pairs=len(heldout),
        heldout_replies=len(replies),
        stats=dataclasses.asdict(stats),
        preferences=source,
        seconds=round(time.time() - started, 1),
        reused=False,
    )
    eval_file.write_text(json.dumps(dataclasses.asdict(report), indent=2))
    # Written last: a folder without it (an interrupted run) is never reused. Downstream stages key on it.
    stored_file.write_text(json.dumps(fingerprint, indent=2))
    metrics = {
        "eval/pairwise_accuracy": accuracy,
        "eval/spearman": rank_correlation,
        "eval/heldout_pairs": len(heldout),
    }
    record.log(metrics, step=steps)
    record.log_samples(_sample_rows(scorer, heldout[:16]), step=steps)
    record.finish(dataclasses.asdict(report))
    return report


def relevance_version(config: RewardModelConfig) -> dict[str, int]:
    """With ``context_match``, the version of the relevance term's code: part of the key of every model trained
    with it (reward models and pretrained backbones), so one made by an older version is not reused."""
    if not config.context_match:
        return {}
    from rlhf.models.context_match import IDF_POWER, VERSION

    return {"context_match_version": VERSION, "context_match_idf_power": IDF_POWER}


def reward_model_fingerprint(config: RewardModelConfig, preferences: str, base: str) -> dict[str, Any]:
    """What makes a reward model: its config, the preference file, the base model and :func:`relevance_version`."""
    return stage_fingerprint(config, preferences=preferences, base_model=base, **relevance_version(config))


def check_training_settings(config: RewardModelConfig) -> None:
    """Refuse settings under which no real optimizer step would be taken, before anything is labelled or loaded."""
    if not config.epochs > 0:
        raise ConfigError(f"epochs must be > 0 (it is {config.epochs}): with no epoch the model is not trained")
    if not config.learning_rate > 0:
        raise ConfigError(f"learning_rate must be > 0, got {config.learning_rate}")
    if config.pmp and not (
        config.pmp_epochs > 0
        and config.pmp_learning_rate > 0
        and config.pmp_per_context >= 0
        and config.pmp_batch_size >= 1
    ):
        raise ConfigError(
            f"pmp_epochs and pmp_learning_rate must be > 0, pmp_per_context >= 0 and pmp_batch_size >= 1 (they are "
            f"{config.pmp_epochs}, {config.pmp_learning_rate}, {config.pmp_per_context}, {config.pmp_batch_size}); "
            "pmp: false turns pretraining off"
        )
    if not math.isfinite(config.match_scale):
        raise ConfigError(f"match_scale must be a finite number, got {config.match_scale}")
    for name in ("batch_size", "max_length"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0 < config.heldout_fraction < 1:
        raise ConfigError(f"heldout_fraction must be between 0 and 1 (exclusive), got {config.heldout_fraction}")


def set_aside(path: Path) -> Path:
    """Rename ``path`` to the first free ``<path>.previous[-N]`` and return the new name."""
    target, n = path.with_name(f"{path.name}.previous"), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.previous-{n}")
    path.rename(target)
    return target


def load_reward_base(
    base: str,
    tokenizer_name: str | None = None,
    seed: int = 0,
    context_match: bool = False,
    match_scale: float = 1.0,
    texts: Sequence[str] | None = None,
):
    """(model, tokenizer): ``base`` with a fresh one-output score head (and, with ``context_match``, the relevance
    term of :mod:`rlhf.models.context_match`, its token weights counted over ``texts``), and its tokenizer (or
    ``tokenizer_name``), padding set up for sequence classification. Refuses a tokenizer larger than the model's
    embeddings."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlhf.models.context_match import MODEL_TYPE, RELEVANCE_FAMILIES, base_family, context_match_from, token_weights

    torch.manual_seed(seed)  # the score head is initialised at random
    tokenizer_name = tokenizer_name or base
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
        family = base_family(base) if context_match else None
        if context_match and family not in RELEVANCE_FAMILIES:
            print(f"context_match: the relevance term is built on GPT-2, {base!r} is {family!r}: "
                  "training the plain sequence classifier")  # fmt: skip
            context_match = False
        if context_match:
            model = context_match_from(base, tokenizer, match_scale)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    except OSError as exc:
        raise ValueError(f"cannot load reward-model base {base!r} / tokenizer {tokenizer_name!r}: {exc}") from exc
    check_tokenizer_fits(model, tokenizer, base, tokenizer_name)
    if context_match and texts is not None and family != MODEL_TYPE:  # a pretrained term keeps its own weights
        model.set_token_weights(token_weights(tokenizer, texts))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last non-pad token
    return model, tokenizer


def _fit(config: RewardModelConfig, model, tokenizer, train: Sequence[dict[str, Any]]):
    """Train the reward model on ``train`` with TRL's ``RewardTrainer``; returns (model, tokenizer, steps)."""
    import torch
    from trl import RewardConfig, RewardTrainer

    max_length = model_max_length(model, config.max_length)
    tokenizer.model_max_length = max_length  # saved with the tokenizer: the length the model was trained on
    dataset = tokenize_pairs(train, tokenizer, max_length)

    device = resolve_device(config.device)
    steps = math.ceil(len(dataset) / config.batch_size) * math.ceil(config.epochs)
    args = RewardConfig(
        output_dir=str(Path(config.output_dir).with_name(Path(config.output_dir).name + ".trainer")),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        lr_scheduler_type="cosine",
        # 5% of the steps, rounded down: a short run gets no warm-up, whose first step would be at learning rate 0
        warmup_steps=int(0.05 * steps),
        max_length=None,  # tokenize_pairs truncated already; the trainer would drop long pairs instead
        logging_steps=10,
        save_strategy="no",
        report_to=["wandb"] if config.wandb_mode != "disabled" else "none",
        run_name=config.run_name,
        seed=config.seed,
        use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(),
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)
    return trainer.model, tokenizer, trainer.state.global_step


def _sample_rows(scorer: RewardFunction, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if not records:
        return []
    contexts = [r["context"] for r in records]
    chosen = scorer(contexts, [r["chosen"] for r in records])
    rejected = scorer(contexts, [r["rejected"] for r in records])
    return [
        {"context": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"], "rm_chosen": c, "rm_rejected": j}
        for r, c, j in zip(records, chosen.tolist(), rejected.tolist(), strict=True)
    ]


def _free_run_name(config: RewardModelConfig) -> str:
    """The run name (``reward_model`` when unset), numbered (``reward_model-2``…) when a record of that name
    exists: a reward model trained again (its inputs changed) keeps the record of the one before."""
    base = config.run_name or "reward_model"
    name, n = base, 1
    while (run_folder(config.runs_dir, config.group, name) / "run.json").exists():
        n += 1
        name = f"{base}-{n}"
    return name
