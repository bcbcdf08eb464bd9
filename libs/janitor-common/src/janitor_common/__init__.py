"""Shared library of the Janitor services: config, db, auth, artifacts, pub/sub, web."""

__version__ = "0.1.0"
