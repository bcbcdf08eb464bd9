"""Development tooling of the Janitor services: never installed in an image.

``make run``'s stack (``devrun``, ``devstack``), the pytest plugin every test
suite uses (``testing``: PostgreSQL, Redis and an S3 server per session),
and real Debian packages built for tests and benchmarks (``debbuild``).
Kept apart from janitor-common so the runtime library ships only what the
services run, and imports nothing they do not depend on (pytest, httpx).
"""
