"""Build small real Debian packages for tests and benchmarks (``dpkg-deb``).

The services are tested against real ``.deb`` files, so tests make them: a
binary package from a dict of files, in a second or less; and what a build
leaves for upload (source package, binary package, ``.changes``) from
``dpkg-source`` and ``dpkg-genchanges``.
"""

from __future__ import annotations

import os
import shutil
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


def build_upload(
    dest: Path, source: str, version: str, distribution: str = "lintian-fixes", *, binary: bool = True
) -> list[str]:
    """A native source package and (unless ``binary`` is false) an ``all`` binary package, with
    ``<source>_<version>_source.changes`` and ``<source>_<version>_all.changes``, unsigned, in ``dest``.

    Returns the file names written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".build-{dest.name}-") as scratch:
        work = Path(scratch)
        tree = work / f"{source}-{version}"
        (tree / "debian" / "source").mkdir(parents=True)
        (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
        (tree / "debian" / "control").write_text(
            f"Source: {source}\nSection: misc\nPriority: optional\nMaintainer: Janitor Tests <tests@example.com>\n"
            f"Standards-Version: 4.6.2\n\nPackage: {source}\nArchitecture: all\nDescription: test\n test package\n"
        )
        (tree / "debian" / "changelog").write_text(
            f"{source} ({version}) {distribution}; urgency=medium\n\n  * Test build.\n\n"
            " -- Janitor Tests <tests@example.com>  Sun, 22 Nov 2026 00:00:00 +0000\n"
        )
        (tree / "README").write_text(f"{source} {version}\n")
        env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}

        def run(*argv: str, cwd: Path = tree) -> None:
            subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)

        run("dpkg-source", "-b", tree.name, cwd=work)
        run("dpkg-genchanges", "-S", f"-O../{source}_{version}_source.changes")
        if binary:
            build_deb(work, source, version, {f"/usr/share/{source}/README": "x\n"}, arch="all")
            run("dpkg-distaddfile", f"{source}_{version}_all.deb", "misc", "optional")
            run("dpkg-genchanges", "-b", f"-O../{source}_{version}_all.changes")
        names = []
        for f in work.iterdir():
            if f.is_file():
                shutil.move(f, dest / f.name)
                names.append(f.name)
    return sorted(names)
