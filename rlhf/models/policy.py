"""The GPT policy: the offline default built from chatterbot-corpus, or any causal LM by name or path.

No model hub is needed for the default: a word-level tokenizer is trained on the corpus (one token per
corpus word, other text spelled in bytes, so the replies the policy samples are made of corpus words;
byte-level BPE on request), then a
small GPT-2 is pretrained on the dialogues in the toolkit's chat format, a held-out set of dialogues
scores it (perplexity, beside a unigram model's), and both are saved with ``save_pretrained`` to a
cache folder keyed on the config and the corpus, reused by the next run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rlhf.data.alice import alice_fingerprint
from rlhf.data.chat import parse_reply, render_dialogue, render_prompt
from rlhf.data.corpus import (
    cap_repeats,  # noqa: F401 (part of this module's interface before it moved)
    corpus_fingerprint,
    load_dialogues,
    pretraining_dialogues,
    pretraining_extra,
    split_dialogues,
)
from rlhf.runs.fingerprint import FINGERPRINT_FILE, content_record

DEFAULT_POLICY = "default"
EOS = "<|endoftext|>"
PAD = "<pad>"
WORD, BPE = "word", "bpe"
# Bump when the training recipe changes, so old caches are not reused for new code.
# 2: pre-trains on the training side of the split by opening text; 3: word-level tokenizer by default;
# 4: 10 % of training words spelled in bytes (spell_rate), so held-out words outside the vocabulary are
# no longer near-impossible (held-out word perplexity 37,049 against 3.7e10); 5: spelling is never sampled
# (generation_config.suppress_tokens, see spelling_escapes).
RECIPE_VERSION = 5


@dataclass
class PolicyConfig:
    """How to get the policy: ``policy`` is ``"default"`` (build offline) or a model name/folder."""

    policy: str = DEFAULT_POLICY
    cache_dir: str = "artifacts/cache"
    seed: int = 0
    heldout_fraction: float = 0.1
    # How often one dialogue may appear in the pretraining data (0: as often as the corpus repeats it).
    # The corpus repeats its tech-support dialogues (one 121 times), which taught the policy to answer
    # everything with a tech-support line.
    max_repeats: int = 2
    # ALICE's plain question-answer pairs (the aiml package; rlhf/data/alice.py) join the pretraining text:
    # ~6,600 chit-chat exchanges beside the corpus's ~2,000 dialogues, held-out word perplexity ~10x lower.
    pretrain_alice: bool = True
    # Architecture and training of the offline default (ignored for a named or local model).
    # "word": one token per corpus word or punctuation mark (other text spelled in bytes, which sampling
    # never takes: spelling_escapes), so a sampled token is a real word; "bpe": byte-level BPE pieces,
    # which an undertrained model strings into non-words ("iltten 19bert").
    tokenizer: str = WORD
    vocab_size: int = 8192
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 128
    epochs: int = 6
    # Share of the training text's word tokens spelled in bytes instead, drawn afresh every epoch, so the
    # model practises spelling the words it will meet outside its vocabulary (for the held-out perplexity).
    spell_rate: float = 0.05
    # Small batches: the same compute in 4x the optimizer steps of 32 (8 x 128 tokens a step).
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    device: str = "auto"
    num_samples: int = 5  # sample dialogues printed by scripts/build_policy.py


@dataclass
class PolicyReport:
    """Where the built policy lives and how well it predicts held-out dialogues."""

    path: str
    heldout_perplexity: float
    unigram_perplexity: float
    heldout_tokens: int
    train_seconds: float
    reused: bool


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def context_window(model) -> int | None:
    """The longest input ``model`` takes (its position table), or ``None`` when its config does not say."""
    return getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)


def cache_key(config: PolicyConfig) -> str:
    """Hash of everything the default policy's weights depend on."""
    fields = dataclasses.asdict(config)
    for irrelevant in ("policy", "cache_dir", "device", "num_samples"):
        fields.pop(irrelevant)
    fields["corpus"] = corpus_fingerprint()
    if fields.pop("pretrain_alice"):  # popped when off: caches built before the field are still found
        fields["alice"] = alice_fingerprint(pretraining_extra(alice=True))
    fields["recipe"] = RECIPE_VERSION
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def default_policy_dir(config: PolicyConfig) -> Path:
    """Cache folder of the offline default policy for this config."""
    return Path(config.cache_dir) / "policy" / f"gpt-{config.n_layer}x{config.n_embd}-{cache_key(config)}"


def ensure_policy(config: PolicyConfig) -> PolicyReport:
    """The offline default policy for ``config``: loaded from the cache when built before, else built."""
    target = default_policy_dir(config)
    report_file = target / "policy_report.json"
    if report_file.is_file():
        report = PolicyReport(**json.loads(report_file.read_text()))
        report.path, report.reused = str(target), True
        return report
    _check_writable(Path(config.cache_dir))
    return build_default_policy(config, target)


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PermissionError(f"cache directory {folder} is not writable ({exc.strerror}); set cache_dir") from exc


def train_tokenizer(texts: Sequence[str], vocab_size: int, kind: str = WORD):
    """A tokenizer trained on ``texts``, as a transformers fast tokenizer: ``kind`` is ``"word"`` or ``"bpe"``.

    Both split text the GPT-2 way (a word with its leading space, punctuation apart) into the 256 byte
    symbols and decode any text back exactly. ``"word"`` holds the bytes and the most frequent whole
    words up to ``vocab_size`` tokens, and nothing in between: a known word is one token, any other is
    spelled byte by byte (a BPE model with no merges). ``"bpe"`` merges bytes into ``vocab_size`` pieces.
    """
    from tokenizers import ByteLevelBPETokenizer, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if kind == BPE:
        tokenizer = ByteLevelBPETokenizer()
        tokenizer.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD])
    elif kind == WORD:
        split = pre_tokenizers.ByteLevel(add_prefix_space=False)
        counts = Counter(piece for text in texts for piece, _ in split.pre_tokenize_str(text))
        vocab = {token: i for i, token in enumerate([EOS, PAD, *sorted(pre_tokenizers.ByteLevel.alphabet())])}
        for word, _ in counts.most_common():
            if len(vocab) >= vocab_size:
                break
            vocab.setdefault(word, len(vocab))
        # ignore_merges: a word in the vocabulary is taken whole; with no merges, any other falls to bytes.
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], ignore_merges=True))
        tokenizer.pre_tokenizer, tokenizer.decoder = split, decoders.ByteLevel()
        tokenizer.add_special_tokens([EOS, PAD])
    else:
        raise ValueError(f"tokenizer must be {WORD!r} or {BPE!r}, got {kind!r}")
    specials = dict(bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=PAD)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials)


def byte_spellings(tokenizer) -> dict[int, list[int]]:
    """``{token id: its byte token ids}`` for every token longer than one byte (specials excluded)."""
    vocab = tokenizer.get_vocab()
    specials = set(tokenizer.all_special_tokens)
    return {
        i: [vocab[b] for b in token]
        for token, i in vocab.items()
        if len(token) > 1 and token not in specials and all(b in vocab for b in token)
    }


def byte_of_symbol() -> dict[str, int]:
    """``{symbol: byte}`` of GPT-2's byte-level alphabet (printable bytes stand for themselves, the rest
    for characters from U+0100 on: the space is ``"Ġ"``, the newline ``"Ċ"``)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(others)}


def spelling_escapes(tokenizer) -> list[int]:
    """Ids of the byte tokens that words outside the vocabulary are spelled with: the lone space that opens
    such a word, the ASCII letters and digits, and the bytes of non-ASCII characters.

    A word-level tokenizer spells every word outside its vocabulary as a space followed by its bytes, so
    the lone space carries the probability of *all* such words at once: at a reply's first word, where no
    single known word is likely, sampling takes it, and the small model strings bytes into non-words
    ("Tattinerig"). Every word the tokenizer knows is one token, so a lone letter only ever spells. The
    policy keeps spelling for scoring text (the perplexity of unseen words) but never samples it: these
    ids go into its ``generation_config.suppress_tokens``, which every ``generate`` call applies (ours,
    the chat's, and TRL's PPO and GRPO, whose own generation configs leave it unset).
    """
    spelled = {b for b in range(256) if b == 0x20 or b >= 0x80 or chr(b).isascii() and chr(b).isalnum()}
    vocab = tokenizer.get_vocab()
    return sorted(vocab[s] for s, b in byte_of_symbol().items() if b in spelled and s in vocab)


def mask_spelling(model) -> None:
    """Give the policy's suppressed tokens (``generation_config.suppress_tokens``) no probability in every
    forward pass too, not only in ``generate``: their logits become -10,000.

    TRL's PPO takes a rollout's log-probabilities from the generation scores (suppressed) and the training
    and reference ones from plain forward passes: with the suppression in ``generate`` alone the two
    disagreed by ~0.3 nats a token at temperature 0.5, so PPO's first ratio was ~0.82 (clipped for a third
    of the tokens) and its KL penalty ~2 nats a reply too high. A hook on the output layer is not saved with
    the model: apply it to every copy PPO runs (the policy and the reference).
    """
    ids = list(getattr(model.generation_config, "suppress_tokens", None) or [])
    if not ids:
        return
    head = model.get_output_embeddings()
    index = torch.tensor(ids, device=head.weight.device)
    head.register_forward_hook(lambda _module, _inputs, logits: logits.index_fill(-1, index, -1e4))


def spell_some(
    sequences: list[list[int]], spelling: dict[int, list[int]], rate: float, rng: random.Random
) -> list[list[int]]:
    """``sequences`` with each token of ``spelling`` replaced by its bytes with probability ``rate``."""
    if rate <= 0:
        return [list(s) for s in sequences]
    return [
        [b for t in seq for b in (spelling[t] if t in spelling and rng.random() < rate else (t,))] for seq in sequences
    ]


def encode_dialogues(tokenizer, dialogues: Sequence[Sequence[str]], max_length: int | None) -> list[list[int]]:
    """Each dialogue as ``<eos> turns… <eos>`` token ids (cut at ``max_length``): the leading eos lets the
    first token be predicted."""
    out = []
    for turns in dialogues:
        ids = tokenizer(render_dialogue(turns), add_special_tokens=False)["input_ids"]
        out.append(([tokenizer.eos_token_id] + ids + [tokenizer.eos_token_id])[:max_length])
    return out


def _batches(sequences: list[list[int]], batch_size: int, pad_id: int):
    """Padded (ids, mask, labels) batches of ``sequences`` in order; padding is masked out of the loss."""
    for i in range(0, len(sequences), batch_size):
        chunk = sequences[i : i + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
        mask = ids != pad_id
        labels = ids.masked_fill(~mask, -100)
        yield ids, mask.long(), labels


def pack_blocks(sequences: list[list[int]], block_size: int) -> torch.Tensor:
    """Concatenate ``<eos> dialogue <eos>`` sequences, one eos between dialogues, into rows of ``block_size``.

    Packing wastes no compute on padding: dialogues are 26 tokens long at the median but up to
    hundreds, so padded batches were mostly padding. The last partial block is dropped.
    """
    flat = sequences[0][:1] + [t for seq in sequences for t in seq[1:]]
    rows = len(flat) // block_size
    if rows == 0:
        raise ValueError(f"{len(flat)} tokens do not fill one block of {block_size}")
    return torch.tensor(flat[: rows * block_size]).view(rows, block_size)


@torch.no_grad()
def perplexity(model, sequences: list[list[int]], pad_id: int, batch_size: int = 64) -> float:
    """Token-level perplexity of ``model`` on ``sequences`` (every token after the first is predicted)."""
    model.eval()
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    for ids, mask, labels in _batches(sequences, batch_size, pad_id):
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        targets = labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
        )
        total_nll += nll.item()
        total_tokens += int((targets != -100).sum())
    return math.exp(total_nll / total_tokens)


def unigram_perplexity(train: list[list[int]], heldout: list[list[int]], vocab_size: int) -> float:
    """Perplexity of an add-one-smoothed unigram model of the training tokens, on the same targets."""
    counts = Counter(t for seq in train for t in seq[1:])
    total = sum(counts.values()) + vocab_size
    targets = [t for seq in heldout for t in seq[1:]]
    nll = -sum(math.log((counts[t] + 1) / total) for t in targets)
    return math.exp(nll / len(targets))


def build_default_policy(config: PolicyConfig, target: Path) -> PolicyReport:
    """Train the tokenizer and the GPT on the corpus, evaluate, and save both to ``target``."""
    from transformers import GPT2Config, GPT2LMHeadModel, get_cosine_schedule_with_warmup

    started = time.time()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    train_dialogues = pretraining_dialogues(
        config.heldout_fraction, config.seed, max_repeats=config.max_repeats, alice=config.pretrain_alice
    )
    heldout_dialogues = [load_dialogues()[i] for i in split_dialogues(config.heldout_fraction, config.seed)[1]]

    tokenizer = train_tokenizer([render_dialogue(d) for d in train_dialogues], config.vocab_size, config.tokenizer)
    # Training reads whole dialogues packed into blocks; evaluation reads each held-out dialogue alone.
    train = encode_dialogues(tokenizer, train_dialogues, max_length=None)
    heldout = encode_dialogues(tokenizer, heldout_dialogues, config.n_positions)

    model_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    rng = random.Random(config.seed)
    spelling = byte_spellings(tokenizer)
    epoch_text = [spell_some(train, spelling, config.spell_rate, rng) for _ in range(config.epochs)]
    steps_per_epoch = math.ceil(len(pack_blocks(epoch_text[0], config.n_positions)) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, total_steps // 10), total_steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _no_autocast()

    progress = tqdm(total=total_steps, desc="pretraining default policy", unit="step")
    for text in epoch_text:
        model.train()
        rng.shuffle(text)  # new block boundaries every epoch
        blocks = pack_blocks(text, config.n_positions)
        # Spelling draws differ by epoch, so block counts do too: no epoch runs past the schedule's share.
        order = torch.randperm(len(blocks))[: steps_per_epoch * config.batch_size]
        for batch in blocks[order].split(config.batch_size):
            batch = batch.to(device)
            with autocast:
                loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.update()
            progress.set_postfix(loss=f"{loss.item():.3f}")
    progress.close()

    report = PolicyReport(
        path=str(target),
        heldout_perplexity=perplexity(model, heldout, tokenizer.pad_token_id),
        unigram_perplexity=unigram_perplexity(train, heldout, len(tokenizer)),
        heldout_tokens=sum(len(s) - 1 for s in heldout),
        train_seconds=round(time.time() - started, 1),
        reused=False,
    )
    if config.tokenizer == WORD:
        model.generation_config.suppress_tokens = spelling_escapes(tokenizer)
    save_pretrained_atomically(
        model,
        tokenizer,
        target,
        {
            "policy_config.json": json.dumps(dataclasses.asdict(config), indent=2),
            "policy_report.json": json.dumps(dataclasses.asdict(report), indent=2),
        },
        fingerprint_content=True,
    )
    return report


class _no_autocast:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def save_pretrained_atomically(
    model, tokenizer, target: Path, extra_files: dict[str, str] | None = None, fingerprint_content: bool = False
) -> None:
    """``save_pretrained`` model and tokenizer (and ``{name: text}`` files) to ``target``, all or nothing.

    Written beside the target and renamed, so an interrupted run never leaves a half-written folder
    that a later run would take for a finished one. ``fingerprint_content`` adds a ``fingerprint.json`` of what
    the folder holds (for policies: the default one, a PPO round's), so the stages that read it key on its
    content and a copied ``artifacts/`` folder is reused, not trained again. A reward model writes its own.
    """
    if fingerprint_content and FINGERPRINT_FILE in (extra_files or {}):
        raise ValueError(f"{FINGERPRINT_FILE} given in extra_files and asked for from the content: pick one")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text)
        if fingerprint_content:
            (staging / FINGERPRINT_FILE).write_text(json.dumps(content_record(staging)))  # the rename keeps times
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def policy_path(config: PolicyConfig) -> str:
    """Name or folder to load the policy from: builds the offline default when ``policy == "default"``."""
    if config.policy == DEFAULT_POLICY:
        return ensure_policy(config).path
    return config.policy


def load_policy(name_or_path: str, device: str = "auto", dtype: torch.dtype | None = None):
    """(model, tokenizer) of a causal LM by hub name (``gpt2``, ``distilgpt2``) or local folder.

    The tokenizer pads on the left, as generation needs; a missing pad token falls back to eos.
    Raises ``ValueError`` naming ``name_or_path`` when it is neither a folder nor a reachable model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = resolve_device(device)
    if dtype is None:
        dtype = torch.bfloat16 if target.type == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    except OSError as exc:
        where = "folder" if Path(name_or_path).exists() else "local folder, and the model hub did not provide it"
        raise ValueError(f"cannot load policy {name_or_path!r}: not a loadable {where} ({exc})") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(target), tokenizer


@torch.no_grad()
def generate_replies(
    model,
    tokenizer,
    contexts: Sequence[Sequence[str]],
    num_samples: int = 1,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    batch_size: int = 64,
    seed: int | None = None,
) -> list[list[str]]:
    """``num_samples`` sampled replies for each context (greedy when ``temperature == 0``)."""
    if seed is not None:
        torch.manual_seed(seed)
    model.eval()
    device = next(model.parameters()).device
    prompts = [render_prompt(c) for c in contexts for _ in range(num_samples)]
    # Left padding for generation; left truncation keeps the end of a long context, next to the reply.
    sides = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    replies: list[str] = []
    max_prompt = (context_window(model) or 1024) - max_new_tokens
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(
            prompts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=max_prompt
        ).to(device)
        sampling = {"temperature": temperature, "top_k": 0} if temperature > 0 else {}
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            do_sample=temperature > 0,
            **sampling,
        )
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        replies.extend(parse_reply(t) for t in texts)
    tokenizer.padding_side, tokenizer.truncation_side = sides
    return [replies[i : i + num_samples] for i in range(0, len(replies), num_samples)]
