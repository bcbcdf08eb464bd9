"""What a tool failure means: retry later, or give up at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from janitor_auto_upload.tools import ToolRun, dput_argv


@pytest.mark.parametrize(
    ("output", "transient"),
    [
        ("Uploading foo.dsc: Connection refused", True),
        ("Upload failed: 503 Service Unavailable", True),
        ("Upload failed: 403 Forbidden", False),
        ("No host nosuch found in config.", False),
        ("socket.gaierror: [Errno -2] Name or service not known", False),
        ("Good signature required; bad signature on foo.dsc", False),
    ],
)
def test_classification(output: str, transient: bool) -> None:
    assert ToolRun(["dput"], 1, output).transient is transient


def test_a_timeout_is_transient() -> None:
    assert ToolRun(["dput"], -1, "no answer within 5s").transient


def test_real_dput_unknown_host_is_permanent(tmp_path: Path) -> None:
    config = tmp_path / "dput.cf"
    config.write_text(f"[local]\nmethod = local\nincoming = {tmp_path}\n")
    changes = tmp_path / "x_1_source.changes"
    changes.write_text("")
    done = subprocess.run(dput_argv(changes, "nosuch", config), cwd=tmp_path, capture_output=True, text=True)
    run = ToolRun(["dput"], done.returncode, done.stdout + done.stderr)
    assert not run.ok and not run.transient
    assert "No host nosuch found in config" in run.describe()
