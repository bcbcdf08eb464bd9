"""How ``make run`` starts the differ on one machine.

The dev stack (janitor-dev) finds this through the ``janitor.dev`` entry
point and knows nothing else about the service; see ``janitor_dev.devrun``
for the keys of the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

PORT = 9920


def launch(facilities: Mapping[str, str]) -> dict[str, object]:
    run_dir = Path(facilities["run_dir"])
    (run_dir / "differ-cache").mkdir(exist_ok=True)
    return {
        "name": "differ",
        "argv": ["janitor-differ", "--cache-path", str(run_dir / "differ-cache")],
        "ports": {"differ": PORT},
        "health_port": PORT,
        "endpoints": {"differ": f"http://127.0.0.1:{PORT}"},
        "urls": {"differ": f"http://127.0.0.1:{PORT}/ready       (/metrics)"},
    }
