"""Build small real Debian packages for tests and benchmarks (``dpkg-deb``).

The services are tested against real ``.deb`` files, so tests make them: a
binary package from a dict of files, in a second or less. The changes and
source packages auto-upload needs come from ``dpkg-source`` and
``dpkg-genchanges`` in its own tests.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


def build_deb(
    outdir: Path,
    package: str,
    version: str,
    files: dict[str, bytes | str],
    *,
    arch: str = "amd64",
    control: dict[str, str] | None = None,
    udeb: bool = False,
    compression: str = "xz",
) -> Path:
    """``outdir/<package>_<version without epoch>_<arch>.deb`` holding ``files``.

    ``files`` maps absolute paths in the package (``/usr/share/x``) to content.
    """
    fields = {
        "Package": package,
        "Version": version,
        "Architecture": arch,
        "Maintainer": "Janitor Tests <tests@example.com>",
        "Section": "misc",
        "Priority": "optional",
        "Description": f"test package {package}\n test package built by the Janitor test suite",
    }
    fields.update(control or {})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
        for path, content in files.items():
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content.encode() if isinstance(content, str) else content)
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        plain_version = version.split(":", 1)[-1]
        out = outdir / f"{package}_{plain_version}_{arch}.{'udeb' if udeb else 'deb'}"
        outdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(out)],
            check=True,
            capture_output=True,
            env=env,
        )
    return out
