"""Bazaar for tests and benchmarks: long histories made fast, brz without the smart protocol, brz over ssh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Commits made through Breezy's API in a child process: a few hundred in
# seconds, where `brz commit` takes a third of a second each.
_HISTORY_SCRIPT = """
import sys
import breezy
import breezy.bzr
from breezy.controldir import ControlDir, format_registry

path, count, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with breezy.initialize():
    tree = ControlDir.create_standalone_workingtree(path, format_registry.make_controldir("2a"))
    for i in range(count):
        name = f"file{i % files}.txt"
        with open(f"{path}/{name}", "a") as f:
            f.write(f"line {i} " * (i % 40 + 1) + "\\n")
        if i < files:
            tree.add([name])
        tree.commit(f"commit {i}", committer="Test <t@example.com>", timestamp=1700000000 + i, timezone=0)
"""

# A brz plugin that removes the smart-protocol prober: brz then reads
# http:// URLs as files, as a client without the smart protocol does.
_NO_SMART_PLUGIN = """
from breezy.bzr import RemoteBzrProber
from breezy.controldir import ControlDirFormat

ControlDirFormat.unregister_prober(RemoteBzrProber)
"""


def make_history(tree: Path, revisions: int, files: int = 20) -> None:
    """A standalone working tree at ``tree`` with ``revisions`` commits over ``files`` files."""
    subprocess.run(
        [sys.executable, "-c", _HISTORY_SCRIPT, str(tree), str(revisions), str(files)], check=True, capture_output=True
    )


def no_smart_plugin(directory: Path) -> str:
    """Write the plugin under ``directory``; the value for ``BRZ_PLUGINS_AT``."""
    plugin = directory / "nosmart"
    plugin.mkdir(parents=True, exist_ok=True)
    (plugin / "__init__.py").write_text(_NO_SMART_PLUGIN)
    return f"nosmart@{plugin}"


def ssh_client_env(directory: Path, key: Path, host_key: Path, port: int) -> dict[str, str]:
    """Environment for brz over bzr+ssh to a bzr-store on 127.0.0.1:``port``: the system ``ssh``, with ``key``.

    An ``ssh`` wrapper in ``directory`` uses only ``key`` and knows only the
    store's host key (its public half, from ``host_key``); no agent, no
    password prompt, no user configuration. Returns ``BRZ_SSH`` and ``PATH``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    host_public = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(host_key)], capture_output=True, text=True, check=True
    ).stdout.strip()
    known = directory / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    wrapper = directory / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec /usr/bin/ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known}"
        ' -o StrictHostKeyChecking=yes -o BatchMode=yes -o PasswordAuthentication=no "$@"\n'
    )
    wrapper.chmod(0o755)
    return {"BRZ_SSH": "openssh", "PATH": f"{directory}:{os.environ['PATH']}"}
