"""Binary packages of a run: fetch, check, and pair by package name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from janitor_common.artifacts import ArtifactManager, ArtifactsMissing

from .limits import Limits, ToolOutOfMemory, ToolTimeout, run_tool
from .runs import RunUnavailable

DEB_RE = re.compile(r"^(?P<package>[a-z0-9][a-z0-9+.-]*)_(?P<version>[^_]+)_(?P<arch>[^_.]+)\.(?P<ext>u?deb)$")


class CorruptPackage(Exception):
    def __init__(self, run_id: str, name: str, reason: str) -> None:
        super().__init__(f"{name} of run {run_id} is not a valid package: {reason}")
        self.run_id = run_id
        self.name = name


@dataclass(frozen=True)
class Deb:
    path: Path
    package: str
    arch: str


def is_binary_package(name: str) -> bool:
    return name.endswith((".deb", ".udeb"))


async def fetch_debs(artifacts: ArtifactManager, run_id: str, dest: Path) -> list[Deb]:
    """The run's .deb/.udeb files in ``dest``; ``RunUnavailable`` when it has none."""
    try:
        names = await artifacts.retrieve(run_id, dest, is_binary_package)
    except ArtifactsMissing:
        raise RunUnavailable(run_id, f"no artifacts for run {run_id}") from None
    if not names:
        raise RunUnavailable(run_id, f"run {run_id} has no binary packages")
    debs = []
    for name in names:
        m = DEB_RE.match(name)
        if m is None:
            raise CorruptPackage(run_id, name, "file name is not PACKAGE_VERSION_ARCH.deb")
        debs.append(Deb(dest / name, m["package"], m["arch"]))
    return debs


async def check_deb(run_id: str, deb: Deb, limits: Limits) -> None:
    """A damaged .deb is an error to report, not a diff to cache (diffoscope would hexdump it)."""
    try:
        info = await run_tool(["dpkg-deb", "--info", str(deb.path)], limits)
        if info.returncode != 0:
            raise CorruptPackage(
                run_id, deb.path.name, info.stderr_text.strip().splitlines()[-1:][0] if info.stderr else ""
            )
        contents = await run_tool(["sh", "-c", 'dpkg-deb --fsys-tarfile "$1" > /dev/null', "-", str(deb.path)], limits)
        if contents.returncode != 0:
            reason = contents.stderr_text.strip().splitlines()
            raise CorruptPackage(run_id, deb.path.name, reason[-1] if reason else "unreadable data")
    except (ToolTimeout, ToolOutOfMemory) as e:
        raise CorruptPackage(run_id, deb.path.name, str(e)) from None


async def check_debs(run_id: str, debs: list[Deb], limits: Limits) -> None:
    # One at a time (each takes milliseconds): no check is left running after a failure.
    for deb in debs:
        await check_deb(run_id, deb, limits)


@dataclass(frozen=True)
class Pairing:
    pairs: list[tuple[Deb, Deb]]
    removed: list[Deb]  # only in the old run
    added: list[Deb]  # only in the new run


def pair_debs(old: list[Deb], new: list[Deb]) -> Pairing:
    """Pair by (package, architecture): never by directory order or fuzzy names."""
    old_by = {(d.package, d.arch): d for d in old}
    new_by = {(d.package, d.arch): d for d in new}
    pairs = [(old_by[k], new_by[k]) for k in sorted(old_by.keys() & new_by.keys())]
    removed = [old_by[k] for k in sorted(old_by.keys() - new_by.keys())]
    added = [new_by[k] for k in sorted(new_by.keys() - old_by.keys())]
    return Pairing(pairs, removed, added)
