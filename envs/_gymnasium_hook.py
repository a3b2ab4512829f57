"""Registers the rlhf/ environments as soon as gymnasium is imported, in any interpreter.

Gymnasium 1.x dropped its entry-point plugin loader, so ``rlhf_gym_envs.pth`` (installed beside the
packages) imports this module at start-up. It costs one import finder and touches nothing else
until ``import gymnasium`` runs.
"""

import importlib.machinery
import sys


def _register() -> None:
    from envs.registration import register_envs

    register_envs()


class _RegisterAfterGymnasium:  # a meta path finder; importlib.abc would slow every start-up
    def find_spec(self, fullname, path, target=None):
        if fullname != "gymnasium":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_gymnasium = spec.loader.exec_module

        def exec_module(module):
            exec_gymnasium(module)
            _register()

        spec.loader.exec_module = exec_module
        return spec


if "gymnasium" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
