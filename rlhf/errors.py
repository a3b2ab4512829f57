"""The one kind of error a user fixes, not a programmer: :class:`UserError`.

A config, a data file, a path or an environment id that is wrong raises a subclass of ``UserError``
(``rlhf.config.ConfigError``, ``rlhf.data.preferences.PreferenceDataError``…). The command line
(:mod:`rlhf.cli`) prints its message alone and exits with status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message names the file, line, field or id at fault and what was expected."""


class TrainingError(UserError):
    """A trainer that would take no real optimizer step, or took steps that changed nothing."""
