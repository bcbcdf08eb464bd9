"""How ``make run`` starts bzr-store on one machine.

The dev stack (janitor-dev) finds this through the ``janitor.dev`` entry
point and knows nothing else about the service; see ``janitor_dev.devrun``
for the keys of the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ADMIN_PORT = 9929
PUBLIC_PORT = 9930


def launch(facilities: Mapping[str, str]) -> dict[str, object]:
    run_dir = Path(facilities["run_dir"])
    (run_dir / "bzr").mkdir(exist_ok=True)
    return {
        "name": "bzr-store",
        "argv": ["janitor-bzr-store", "--vcs-path", str(run_dir / "bzr")],
        "ports": {"bzr-store admin": ADMIN_PORT, "bzr-store public": PUBLIC_PORT},
        "health_port": ADMIN_PORT,
        "endpoints": {"bzr-public": f"http://127.0.0.1:{PUBLIC_PORT}", "bzr-admin": f"http://127.0.0.1:{ADMIN_PORT}"},
        "urls": {
            "bzr-store public": f"http://127.0.0.1:{PUBLIC_PORT}/bzr/",
            "bzr-store admin": f"http://127.0.0.1:{ADMIN_PORT}/            (/ready, /metrics)",
        },
    }
