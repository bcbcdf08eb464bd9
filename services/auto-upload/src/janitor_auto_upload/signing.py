"""The signing key from a file (a mounted secret), imported into the service's GnuPG home.

Containers start with an empty GnuPG home and get the key as a secret
file; importing it at start-up keeps the key out of the image.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def gnupg_home() -> Path:
    return Path(os.environ.get("GNUPGHOME") or Path.home() / ".gnupg")


def import_signing_key(path: Path) -> str:
    """Import the secret key in ``path``; returns its fingerprint. ValueError says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"signing key {path}: cannot read it: {e.strerror}") from None
    if not data.strip():
        raise ValueError(f"signing key {path}: the file is empty")
    home = gnupg_home()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    done = subprocess.run(
        ["gpg", "--batch", "--status-fd", "1", "--import"],
        input=data,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(home)},
        timeout=60,
    )
    status = done.stdout.decode(errors="replace")
    secret = [
        line.split()[3]
        for line in status.splitlines()
        if line.startswith("[GNUPG:] IMPORT_OK ") and int(line.split()[2]) & 16
    ]
    if done.returncode != 0 or not secret:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise ValueError(f"signing key {path}: no secret key imported ({reason[-1] if reason else 'no output'})")
    return secret[0]
