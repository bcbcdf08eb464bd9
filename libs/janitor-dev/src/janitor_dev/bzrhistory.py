"""Bazaar histories and clients for tests and benchmarks: long histories fast, and a brz without the smart protocol."""

from __future__ import annotations

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
