"""How ``make run`` starts auto-upload on one machine.

The dev stack (janitor-dev) finds this through the ``janitor.dev`` entry
point and knows nothing else about the service; see ``janitor_dev.devrun``
for the keys of the answer. It signs with the stack's demo key and uploads
with dput to the stack's local upload target.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

PORT = 9933


def launch(facilities: Mapping[str, str]) -> dict[str, object]:
    run_dir = Path(facilities["run_dir"])
    return {
        "name": "auto-upload",
        "argv": [
            "janitor-auto-upload",
            "serve",
            "--dput-host",
            facilities["dput_host"],
            "--dput-config",
            facilities["dput_config"],
            "--debsign-keyid",
            facilities["signing_key"],
            "--state-dir",
            str(run_dir / "auto-upload"),
            # Only what the stack's demo marks for upload: not its unchanged baselines.
            *[arg for name in facilities["upload_distributions"].split() for arg in ("--distribution", name)],
        ],
        "ports": {"auto-upload": PORT},
        "health_port": PORT,
        "endpoints": {"auto-upload": f"http://127.0.0.1:{PORT}"},
        "urls": {"auto-upload": f"http://127.0.0.1:{PORT}/ready       (/metrics)"},
    }
