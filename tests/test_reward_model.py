import json
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
        epochs=4.0,
        learning_rate=1e-3,
        batch_size=16,
        max_length=48,
        device="cpu",
        output_dir=str(tmp_path / "rm"),
        preferences_dir=str(tmp_path / "preferences"),
        runs_dir=str(tmp_path / "runs"),
        wandb_mode="disabled",
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
