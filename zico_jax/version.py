"""The version of zico-jax: the one place it is written (setup.py reads it)."""

__version__ = "0.2.0"
