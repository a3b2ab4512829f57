"""The default YAML configs, shipped inside the package as ``rlhf.configs`` (see rlhf.config.default_config)."""
