"""Gymnasium dialogue environments of rlhf-gym, registered under the ``rlhf/`` namespace."""
