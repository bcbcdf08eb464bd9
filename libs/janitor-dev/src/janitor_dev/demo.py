"""What ``make run`` prepares for the demo: a codebase and worker, a signing key, an upload target.

Kept in ``.run/`` and reused: a second start finds the same worker password
and key. The tests and benchmarks use the signing key the same way.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import psycopg

DEMO_CODEBASE = "demo"

DEMO_WORKER = "demo-worker"

DEMO_CAMPAIGN = "lintian-fixes"

JANITOR_CONF = f"""\
# Written by `make run` (and the whole-suite tests); the services read it through JANITOR_CONFIG.
campaign {{
  name: "{DEMO_CAMPAIGN}"
  debian_build {{ build_distribution: "{DEMO_CAMPAIGN}" }}
}}
campaign {{
  name: "unchanged"
  debian_build {{ build_distribution: "unchanged" }}
}}
distribution {{ name: "unstable" }}
"""


def ensure_demo_data(url: str, run_dir: Path) -> str:
    """The demo codebase and worker; returns the worker's password (kept in .run/)."""
    password_file = run_dir / "demo-worker.password"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO codebase (name, url, branch_url) VALUES (%s, NULL, NULL) ON CONFLICT DO NOTHING",
            (DEMO_CODEBASE,),
        )
        exists = conn.execute("SELECT 1 FROM worker WHERE name = %s", (DEMO_WORKER,)).fetchone()
        if exists and password_file.exists():
            return password_file.read_text().strip()
        # A new password for a worker the database already has (its cluster
        # outlives a checkout removed and cloned again at the same path): set,
        # not replaced, since the demo's runs refer to the worker.
        password = secrets.token_urlsafe(12)
        conn.execute(
            "INSERT INTO worker (name, password) VALUES (%s, crypt(%s, gen_salt('bf')))"
            " ON CONFLICT (name) DO UPDATE SET password = EXCLUDED.password",
            (DEMO_WORKER, password),
        )
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return password


def ensure_signing_key(gnupg: Path) -> str:
    """A passphrase-less demo key for debsign; returns its fingerprint."""
    gnupg.mkdir(mode=0o700, exist_ok=True)
    gpg = ["gpg", "--homedir", str(gnupg), "--batch"]

    def fingerprint() -> str | None:
        out = subprocess.run([*gpg, "--with-colons", "--list-secret-keys"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        return None

    fpr = fingerprint()
    if fpr is None:
        subprocess.run(
            [
                *gpg,
                "--passphrase",
                "",
                "--quick-gen-key",
                "Janitor Demo <janitor-demo@localhost>",
                "ed25519",
                "sign",
                "never",
            ],
            check=True,
            capture_output=True,
        )
        fpr = fingerprint()
    assert fpr is not None
    return fpr


def stop_gpg_agent(gnupg: Path) -> None:
    """gpg starts an agent for the demo key that outlives us otherwise."""
    if gnupg.exists():
        subprocess.run(
            ["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def ensure_upload_target(run_dir: Path) -> Path:
    incoming = run_dir / "incoming"
    incoming.mkdir(exist_ok=True)
    config = run_dir / "dput.cf"
    config.write_text(f"[local]\nmethod = local\nincoming = {incoming}\nallow_unsigned_uploads = 0\nrun_dinstall = 0\n")
    return config
