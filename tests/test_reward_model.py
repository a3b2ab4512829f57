import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rlhf.config import load_config
from rlhf.data.chat import render_exchange
from rlhf.rewards.reward_model import RewardModelScorer
from rlhf.training.reward_model import RewardModelConfig, spearman, tokenize_pairs, train_reward_model


def tiny_config(tmp_path, policy_path: str, **overrides) -> RewardModelConfig:
    """Seconds-sized settings on the tiny policy; an easy gold task (strong sentiment, big margin)."""
    settings = dict(
        policy=policy_path,
        gold="sentiment",
        margin=0.6,
        num_contexts=500,
        samples_per_context=2,
        corpus_replies=6,
        max_new_tokens=12,
        temperature=1.0,  # as configs/reward/tiny.yaml: the tiny policy's samples at 1.0 differ more
        epochs=4.0,
        learning_rate=1e-3,
        batch_size=16,
        max_length=48,
        device="cpu",
        output_dir=str(tmp_path / "rm"),
        preferences_dir=str(tmp_path / "preferences"),
        runs_dir=str(tmp_path / "runs"),
        wandb_mode="disabled",
        pmp=False,  # tests of preference-model pretraining turn it on
        cache_dir=str(tmp_path / "cache"),
    )
    return RewardModelConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def trained(tiny_policy, tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("rm"), tiny_policy.path)
    return config, train_reward_model(config)


def test_reward_model_learns_an_easy_gold_task(trained):
    config, report = trained
    assert report.heldout_pairs >= 50 and report.train_pairs >= 200
    assert report.pairwise_accuracy >= 0.7
    assert report.spearman > 0.2
    saved = json.loads(Path(config.output_dir, "eval.json").read_text())
    assert saved["pairwise_accuracy"] == report.pairwise_accuracy
    record = json.loads(Path(config.runs_dir, config.group, "reward_model", "summary.json").read_text())
    assert record["pairwise_accuracy"] == report.pairwise_accuracy


def test_second_call_reuses_the_reward_model(trained, capsys):
    config, report = trained
    again = train_reward_model(config)
    assert again.reused and again.pairwise_accuracy == report.pairwise_accuracy
    assert "reusing reward model" in capsys.readouterr().out


def test_saved_folder_scores_the_rendered_exchange_it_was_trained_on(trained):
    config, _ = trained
    scorer = RewardModelScorer(config.output_dir, device="cpu")
    assert scorer.model.config.num_labels == 1 and scorer.model.config.pad_token_id == scorer.tokenizer.pad_token_id
    record = {"context": ["Hello"], "chosen": "Nice to meet you!", "rejected": "no"}
    (ids,) = tokenize_pairs([record], scorer.tokenizer, max_length=48)["chosen_ids"]
    assert scorer.tokenizer.decode(ids) == render_exchange(["Hello"], "Nice to meet you!")  # no eos appended
    assert scorer.tokenizer.eos_token_id not in ids


def write_hh_file(path):
    """An hh-rlhf-shaped JSONL file: 24 transcript pairs (love vs hate) and one identical pair."""
    rows = []
    for i, topic in enumerate(["music", "films", "books", "games", "sport", "food", "art", "travel"] * 3):
        ask = f"\n\nHuman: Do you like {topic}?"
        rows.append(
            {
                "chosen": f"{ask}\n\nAssistant: Yes, I love {topic}, it is wonderful!",
                "rejected": f"{ask}\n\nAssistant: I hate {topic}, it is awful{'.' * (i % 3)}",
            }
        )
    rows.append({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_hh_rlhf_file_trains_end_to_end(tiny_policy, tmp_path):
    path = write_hh_file(tmp_path / "hh.jsonl")
    config = tiny_config(tmp_path, tiny_policy.path, preferences=str(path), heldout_fraction=0.25, epochs=1.0)
    report = train_reward_model(config)
    assert report.stats["dropped"] == {"identical chosen and rejected": 1}
    assert report.train_pairs + report.heldout_pairs == 24
    assert 0.0 <= report.pairwise_accuracy <= 1.0
    assert RewardModelScorer(report.path, device="cpu").score([["Hi"]], ["Hello"]).shape == (1,)
    # "auto", the device field's default in every config (rlhf-gym chat passes it), picks cuda or cpu
    assert RewardModelScorer(report.path, device="auto").device in ("cpu", "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_training_and_scoring_run_on_cuda(tiny_policy, tmp_path):
    path = write_hh_file(tmp_path / "hh.jsonl")
    config = tiny_config(tmp_path, tiny_policy.path, preferences=str(path), device="cuda", epochs=1.0)
    report = train_reward_model(config)
    scorer = RewardModelScorer(report.path, device="cuda")
    assert next(scorer.model.parameters()).device.type == "cuda"
    assert np.isfinite(scorer.score([["Hi"]], ["Hello"])).all()


def test_tokenizer_larger_than_the_model_names_both(tiny_policy, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy.path)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(50)])
    tokenizer.save_pretrained(tmp_path / "big_tokenizer")
    rows = [{"prompt": f"q{i}", "chosen": "yes", "rejected": "no"} for i in range(4)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny_config(
        tmp_path, tiny_policy.path, preferences=str(tmp_path / "p.jsonl"), tokenizer=str(tmp_path / "big_tokenizer")
    )
    with pytest.raises(ValueError, match=r"tokenizer .*big_tokenizer.* has \d+ tokens but model .* embeds only \d+"):
        train_reward_model(config)


def test_spearman_matches_known_rankings():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties take average ranks
    assert spearman(np.ones(4), [1, 2, 3, 4]) == 0.0


def test_yaml_configs_mirror_the_dataclass():
    for name in ("default", "tiny"):
        config = load_config(RewardModelConfig, f"configs/reward/{name}.yaml")
        assert isinstance(config, RewardModelConfig)


def test_dialogue_env_rewards_replies_with_the_saved_model(trained):
    pytest.importorskip("rlhf.envs.dialogue")
    import gymnasium

    config, _ = trained
    env = gymnasium.make("rlhf/Dialogue-v0", reward_model=config.output_dir)
    env.reset(seed=0)
    turns = env.unwrapped.turns
    scorer = RewardModelScorer(config.output_dir, device="cpu")
    rewards = []
    for reply in ("That is wonderful, I love it!", "That is awful, I hate it."):
        env.reset(seed=0)
        rewards.append(env.step(reply)[1])
        assert rewards[-1] == pytest.approx(float(scorer.score([turns], [reply])[0]), abs=1e-4)
    env.close()


def _pairs(path, n):
    rows = [{"prompt": f"q{i}", "chosen": "Yes, I love it!", "rejected": f"I hate it {i}."} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_one_step_on_ten_pairs_changes_the_model(tiny_policy, tmp_path):
    """10 pairs make one optimizer step; the warm-up once put that step at learning rate 0, leaving the model
    bit-identical to its backbone while it was reported trained."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    config = tiny_config(tmp_path, tiny_policy.path, preferences=_pairs(tmp_path / "p.jsonl", 10), epochs=1.0)
    report = train_reward_model(config)
    assert report.train_pairs == 8
    backbone = AutoModelForCausalLM.from_pretrained(tiny_policy.path).transformer.h[0].attn.c_attn.weight
    trained = AutoModelForSequenceClassification.from_pretrained(report.path).transformer.h[0].attn.c_attn.weight
    assert not torch.equal(backbone, trained)


def test_settings_that_train_nothing_are_refused_before_any_work(tiny_policy, tmp_path):
    from rlhf.config import ConfigError

    pairs = _pairs(tmp_path / "p.jsonl", 10)
    refused = [("epochs", 0.0), ("learning_rate", -1e-3), ("batch_size", 0), ("max_length", 0)]
    refused.append(("match_scale", math.nan))  # a NaN weight would make every score NaN
    for field, value in refused:
        config = tiny_config(tmp_path, tiny_policy.path, preferences=pairs, **{field: value})
        with pytest.raises(ConfigError, match=field):
            train_reward_model(config)
    assert not Path(config.runs_dir).exists()  # no run record left behind, "running" or otherwise


def test_labelled_preferences_are_read_once_when_retraining(trained, tmp_path, capsys):
    config, _ = trained
    capsys.readouterr()
    train_reward_model(dataclasses.replace(config, epochs=0.5, output_dir=str(tmp_path / "rm"), run_name="rm-again"))
    assert capsys.readouterr().out.count("reusing synthetic preferences") == 1  # it was printed twice


def test_a_model_trained_under_other_settings_is_kept(tiny_policy, tmp_path, capsys):
    pairs = _pairs(tmp_path / "p.jsonl", 10)
    first = train_reward_model(tiny_config(tmp_path, tiny_policy.path, preferences=pairs, epochs=1.0))
    eval_before = Path(first.path, "eval.json").read_text()
    train_reward_model(tiny_config(tmp_path, tiny_policy.path, preferences=pairs, epochs=2.0, run_name="rm2"))
    kept = Path(first.path + ".previous")
    assert (kept / "eval.json").read_text() == eval_before and (kept / "model.safetensors").is_file()
    assert f"kept as {kept}" in capsys.readouterr().out


@pytest.mark.parametrize("error, status", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_a_run_that_dies_after_setup_is_marked(tiny_policy, tmp_path, monkeypatch, error, status):
    import rlhf.training.reward_model as reward_model

    def dies(*args, **kwargs):
        raise error("stopped in training")

    monkeypatch.setattr(reward_model, "_fit", dies)
    config = tiny_config(tmp_path, tiny_policy.path, preferences=_pairs(tmp_path / "p.jsonl", 10))
    with pytest.raises(error):
        train_reward_model(config)
    info = json.loads(Path(config.runs_dir, config.group, "reward_model", "run.json").read_text())
    assert info["status"] == status and "stopped in training" in info["status_reason"]


def test_training_that_moves_no_weight_is_an_error_not_a_model(tiny_policy, tmp_path, monkeypatch):
    import rlhf.training.reward_model as reward_model
    from rlhf.errors import TrainingError

    monkeypatch.setattr(reward_model, "_fit", lambda config, model, tokenizer, train: (model, tokenizer, 1))
    config = tiny_config(tmp_path, tiny_policy.path, preferences=_pairs(tmp_path / "p.jsonl", 10))
    with pytest.raises(TrainingError, match="did not change: 1 optimizer step"):
        train_reward_model(config)
    assert not Path(config.output_dir).exists()
    info = json.loads(Path(config.runs_dir, config.group, "reward_model", "run.json").read_text())
    assert info["status"] == "failed"


def _twins(path, topics):
    """hh-rlhf-shaped twins: for each pair of topics, each context's own reply against the other's."""
    rows = []
    for a, b in zip(topics[::2], topics[1::2], strict=True):
        for mine, other in ((a, b), (b, a)):
            ask = f"\n\nHuman: Tell me about {mine}."
            rows.append(
                {"chosen": f"{ask}\n\nAssistant: I like {mine}.", "rejected": f"{ask}\n\nAssistant: I like {other}."}
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_held_out_file_is_evaluated_on_and_its_contexts_never_trained_on(tiny_policy, tmp_path, capsys):
    train = _twins(tmp_path / "train.jsonl", ["music", "films", "books", "games", "sport", "food", "art", "tea"])
    test = _twins(tmp_path / "test.jsonl", ["music", "films", "cats", "dogs"])  # two contexts also in train
    config = tiny_config(tmp_path, tiny_policy.path, preferences=train, heldout_preferences=test, epochs=1.0)
    report = train_reward_model(config)
    assert (report.train_pairs, report.heldout_pairs) == (6, 4)
    assert "left out 2 training pair(s) whose context is also held out" in capsys.readouterr().out
    # hh-rlhf's layout: one folder, train and test files, read by split
    (tmp_path / "set").mkdir()
    for name, path in (("train", train), ("test", test)):
        Path(path).rename(tmp_path / "set" / f"{name}.jsonl")
    folder = tiny_config(
        tmp_path,
        tiny_policy.path,
        preferences=str(tmp_path / "set"),
        heldout_preferences=str(tmp_path / "set"),
        epochs=1.0,
        output_dir=str(tmp_path / "rm2"),
    )
    again = train_reward_model(folder)
    assert (again.train_pairs, again.heldout_pairs) == (6, 4)


def test_preference_pretraining_is_built_once_and_keyed_on_its_inputs(tiny_policy, tmp_path, capsys):
    from rlhf.training.reward_model import pmp_dir

    pairs = _pairs(tmp_path / "p.jsonl", 10)
    config = tiny_config(
        tmp_path,
        tiny_policy.path,
        preferences=pairs,
        epochs=1.0,
        pmp=True,
        pmp_per_context=1,
        pmp_swaps=0,
        pmp_learning_rate=3e-3,
    )
    first = train_reward_model(config)
    backbone = pmp_dir(config, tiny_policy.path)
    assert (backbone / "fingerprint.json").is_file() and "preference-model pretraining on" in capsys.readouterr().out
    # The reward model starts from the pretrained backbone: its score head is that backbone's, moved on.
    from transformers import AutoModelForSequenceClassification

    pretrained = AutoModelForSequenceClassification.from_pretrained(backbone).score.weight
    assert pretrained.abs().sum() > 0 and not torch.equal(
        pretrained, AutoModelForSequenceClassification.from_pretrained(first.path).score.weight
    )
    # Another reward model on the same base and pmp settings reuses it; other pmp settings build another.
    train_reward_model(dataclasses.replace(config, epochs=2.0, output_dir=str(tmp_path / "rm2")))
    assert f"reusing preference-pretrained backbone {backbone}" in capsys.readouterr().out
    other = dataclasses.replace(config, pmp_learning_rate=1e-3)
    assert pmp_dir(other, tiny_policy.path) != backbone
    # A backbone pretrained with the relevance term is not the plain model's, nor the other way round.
    assert pmp_dir(dataclasses.replace(config, context_match=not config.context_match), tiny_policy.path) != backbone
    # ...and the reward model's own fingerprint follows them: not reused from the first folder.
    assert not train_reward_model(other).reused


def test_a_reward_model_trained_again_keeps_the_record_of_the_one_before(tmp_path):
    """Iterated rounds name their reward models (reward_model-round2); retrained after its inputs changed, the
    model's new record is numbered instead of failing on the old one."""
    from rlhf.training.reward_model import _free_run_name

    config = RewardModelConfig(run_name="reward_model-round2", runs_dir=str(tmp_path), group="g")
    assert _free_run_name(config) == "reward_model-round2"
    (tmp_path / "g" / "reward_model-round2").mkdir(parents=True)
    (tmp_path / "g" / "reward_model-round2" / "run.json").write_text("{}")
    assert _free_run_name(config) == "reward_model-round2-2"
    assert _free_run_name(RewardModelConfig(runs_dir=str(tmp_path), group="g")) == "reward_model"
