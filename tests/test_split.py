"""One split of the contexts by text: nothing evaluated on is trained on, labelled or pre-trained on."""

import pytest

from rlhf.data.corpus import context_key, corpus_contexts, load_dialogues, split_dialogues
from rlhf.data.prompts import load_prompts
from rlhf.rewards.labeller import labelling_contexts
from rlhf.runs.evaluation import held_out_contexts


def keys(contexts):
    return {context_key(c.turns) for c in contexts}


def test_corpus_held_out_contexts_share_no_text_with_any_training_stage():
    held_out = keys(corpus_contexts("heldout"))
    train = keys(corpus_contexts("train"))
    labelled = keys(labelling_contexts(10_000, seed=0))
    dialogues = load_dialogues()
    pretrained_openings = {context_key(dialogues[i][:1]) for i in split_dialogues(0.1, 0)[0]}
    assert len(held_out) == len(corpus_contexts("heldout")) >= 64  # distinct, and enough to evaluate on
    assert held_out.isdisjoint(train)
    assert held_out.isdisjoint(labelled)
    assert held_out.isdisjoint(pretrained_openings)
    assert keys(held_out_contexts()) <= held_out


def test_repeated_prompts_in_a_file_land_on_one_side(tmp_path):
    path = tmp_path / "prompts.txt"
    lines = [f"question {i}?" for i in range(20)]
    lines += ["Hi", "hi!", "HI", "  hi  ", "question 3", "Question 7!!"]  # repeats by normalised text
    path.write_text("\n".join(lines) + "\n")
    train = load_prompts(path, "train", heldout_fraction=0.25, seed=1)
    held_out = load_prompts(path, "heldout", heldout_fraction=0.25, seed=1)
    assert keys(train).isdisjoint(keys(held_out))
    assert len(train) + len(held_out) == len(keys(train) | keys(held_out)) == 21


def test_labeller_skips_the_held_out_prompts_of_the_envs_own_prompt_file(tmp_path):
    corpus = [c.turns[0] for c in corpus_contexts("train")[:40]]
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(corpus) + "\n")
    held_out = keys(load_prompts(path, "heldout"))
    assert held_out  # some of the env's held-out prompts are corpus training openings...
    assert held_out.isdisjoint(keys(labelling_contexts(10_000, seed=0, prompts=str(path))))  # ...never labelled


def test_a_prompt_file_of_one_text_repeated_is_refused_by_name(tmp_path):
    path = tmp_path / "same.txt"
    path.write_text("Hello there\nhello, there!\nHELLO THERE\n")
    with pytest.raises(ValueError, match=r"same\.txt.*1 distinct prompt"):
        load_prompts(path, "train")


@pytest.mark.parametrize("lines, fraction", [("one\ntwo\nthree\nfour\n", 0.9), ("one\nOne!\ntwo\n", 0.75)])
def test_a_fraction_that_leaves_no_training_prompt_is_refused(tmp_path, lines, fraction):
    path = tmp_path / "few.txt"
    path.write_text(lines)
    distinct = len(set(keys(load_prompts(path, "all"))))
    with pytest.raises(ValueError, match=rf"few\.txt.*{fraction} of {distinct} distinct prompts leaves no training"):
        load_prompts(path, "heldout", heldout_fraction=fraction)


def test_a_small_fraction_of_few_prompts_still_holds_one_out(tmp_path):
    path = tmp_path / "few.txt"
    path.write_text("one\ntwo\nthree\nfour\n")
    assert len(load_prompts(path, "heldout", heldout_fraction=0.01)) == 1
    assert len(load_prompts(path, "train", heldout_fraction=0.01)) == 3


def test_ppo_evaluates_a_registered_env_on_its_own_held_out_prompts():
    import gymnasium
    from rlhf.envs import register_reward_env

    from rlhf.training.policy_eval import evaluation_contexts

    prompts = [f"Tell me about topic number {i}" for i in range(30)]
    env_id = register_reward_env("rlhf-test/OwnPrompts-v0", "default", prompts=prompts)
    env = gymnasium.make(env_id)
    held_out = evaluation_contexts(env, 64)
    assert held_out == [c.turns for c in load_prompts(prompts, "heldout")]
    assert keys(load_prompts(held_out, "all")).isdisjoint(keys(env.unwrapped.contexts))  # its own, none trained on


def test_pipeline_refuses_stages_that_split_the_contexts_differently(tmp_path):
    from rlhf.config import ConfigError
    from rlhf.models.policy import PolicyConfig
    from rlhf.pipeline import PipelineConfig, _check_one_split
    from rlhf.training.reward_model import RewardModelConfig

    dqn = tmp_path / "dqn.yaml"
    dqn.write_text("heldout_fraction: 0.2\n")
    config = PipelineConfig(dqn_config=str(dqn))
    with pytest.raises(ConfigError, match=rf"{dqn} \(heldout_fraction, seed\): \(0.2, 0\)"):
        _check_one_split(config, PolicyConfig(), RewardModelConfig())
    same = _check_one_split(PipelineConfig(), PolicyConfig(), RewardModelConfig())
    assert same.prompts is None  # the labeller is told the env's prompt source (here the corpus)
