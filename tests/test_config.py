import pytest

from rlhf.config import ConfigError, load_config, save_config
from rlhf.models.policy import PolicyConfig


def test_yaml_and_overrides_fill_the_dataclass(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("n_layer: 3\nepochs: 2\n")
    config = load_config(PolicyConfig, path, ["--epochs", "5"])
    assert (config.n_layer, config.epochs, config.n_embd) == (3, 5, PolicyConfig().n_embd)


def test_misspelled_key_names_file_key_and_suggestion(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("n_layers: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(PolicyConfig, path)
    message = str(info.value)
    assert str(path) in message and "'n_layers'" in message and "did you mean 'n_layer'" in message


def test_missing_file_and_unknown_override_are_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(PolicyConfig, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="--n_layers"):
        load_config(PolicyConfig, None, ["--n_layers", "3"])


def test_saved_config_loads_back(tmp_path):
    config = PolicyConfig(epochs=7, policy="gpt2")
    save_config(config, tmp_path / "c.yaml")
    assert load_config(PolicyConfig, tmp_path / "c.yaml") == config


def test_shipped_configs_load():
    load_config(PolicyConfig, "configs/policy/default.yaml")


def test_bad_yaml_values_are_blamed_on_the_file_key_and_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("n_layer: 3\nbatch_size: eight\n")
    with pytest.raises(ConfigError, match=rf"{path}: batch_size: expected a whole number, got 'eight' \(line 2\)"):
        load_config(PolicyConfig, path)
    path.write_text("batch_size: 8.5\n")  # once accepted as it was
    with pytest.raises(ConfigError, match=r"batch_size: expected a whole number, got 8.5"):
        load_config(PolicyConfig, path)
    path.write_text("learning_rate: 1e-3\nbatch_size: 8.0\n")  # YAML reads 1e-3 as text: still a number
    config = load_config(PolicyConfig, path)
    assert (config.learning_rate, config.batch_size) == (1e-3, 8)


def test_bad_override_values_name_the_option():
    with pytest.raises(ConfigError, match=r"--batch_size.*invalid int value: '8.5'"):
        load_config(PolicyConfig, None, ["--batch_size", "8.5"])


def test_an_empty_yaml_leaves_the_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set yet\n")
    assert load_config(PolicyConfig, path) == PolicyConfig()


def test_config_paths_in_a_yaml_are_relative_to_its_folder(tmp_path, monkeypatch):
    from rlhf.training.reward_model import RewardModelConfig

    (tmp_path / "mine" / "policy").mkdir(parents=True)
    (tmp_path / "mine" / "policy" / "small.yaml").write_text("n_layer: 1\n")
    (tmp_path / "mine" / "reward.yaml").write_text("policy_config: policy/small.yaml\n")
    monkeypatch.chdir(tmp_path / "mine" / "policy")  # anywhere but the config's folder
    config = load_config(RewardModelConfig, tmp_path / "mine" / "reward.yaml")
    assert load_config(PolicyConfig, config.policy_config).n_layer == 1


def test_mapping_fields_take_json_and_dotted_overrides(tmp_path):
    from rlhf.training.ppo import PPOConfig

    path = tmp_path / "ppo.yaml"
    path.write_text("env_kwargs:\n  reward: default\n  gold: default\npolicy_kwargs:\n  n_layer: 2\n")
    config = load_config(PPOConfig, path, ["--env_kwargs", "{}", "--env_kwargs.reward_model", "rm/folder",
                                           "--env_kwargs.max_turns=2", "--env_kwargs.gold", "null",
                                           "--policy_kwargs.n_embd", "32", "--batch_size", "4"])  # fmt: skip
    assert config.env_kwargs == {"reward_model": "rm/folder", "max_turns": 2, "gold": None}
    assert config.policy_kwargs == {"n_layer": 2, "n_embd": 32} and config.batch_size == 4
    merged = load_config(PPOConfig, path, ["--env_kwargs.prompts", "p.txt"])
    assert merged.env_kwargs == {"reward": "default", "gold": "default", "prompts": "p.txt"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env_kwargs", "reward=length"], r"--env_kwargs: expected a JSON object"),
        (["--env_kwargs", "[1, 2]"], r"--env_kwargs: expected a JSON object \(a mapping\), got list"),
        (["--batch_size.x", "3"], r"--batch_size.x: 'batch_size' is not a mapping"),
        (["--env_kwargs.reward"], r"--env_kwargs.reward needs a value"),
    ],
)
def test_bad_mapping_overrides_are_named(args, message):
    from rlhf.training.ppo import PPOConfig

    with pytest.raises(ConfigError, match=message):
        load_config(PPOConfig, None, args)
