"""``make wheels``: each service and its runtime dependencies as wheels in build/wheels/<service>.

Inside a container build pip cannot reach a package index, so each image
installs the wheel files of its own directory by name, with ``--no-deps``:
the directory holds the service's whole runtime closure, found from the
installed packages' metadata in .venv and pinned, with hashes, by
requirements/constraints.txt. The images carry exactly the versions the
tests ran with, and no test tools; ``pip check`` in the build proves the
closure complete.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
OURS = {
    "janitor-common": ROOT / "libs" / "janitor-common",
    "janitor-bzr-store": ROOT / "services" / "bzr-store",
    "janitor-differ": ROOT / "services" / "differ",
    "janitor-auto-upload": ROOT / "services" / "auto-upload",
}


# The host's Python and the images' (Debian bookworm's python3 is 3.11.2):
# a dependency either of them needs goes in.
PYTHONS = [{}, {"python_full_version": "3.11.2", "python_version": "3.11"}]


def runtime_closure(roots: list[str]) -> set[str]:
    """Every distribution the roots need at run time (extras not asked for are left out)."""
    seen: set[str] = set()
    todo = [(canonicalize_name(r), frozenset[str]()) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = name + ("[" + ",".join(sorted(extras)) + "]" if extras else "")
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            # Needed only by the images' Python (not installed here): its own
            # requirements cannot be read; the image build fails loudly if any.
            continue
        for line in requires:
            req = Requirement(line)
            envs = [{"extra": e, **python} for e in extras or [""] for python in PYTHONS]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {k.split("[")[0] for k in seen}


def pinned_blocks(constraints: Path) -> dict[str, str]:
    """name -> its 'name==version --hash ...' block from the compiled constraints."""
    blocks: dict[str, str] = {}
    current: list[str] = []
    for line in constraints.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            # Markers dropped: a wheel the images' Python needs is built even
            # when the host's Python would skip it.
            current = [re.sub(r"\s*;[^\\]*", " ", line)]
            blocks[canonicalize_name(line.split("==")[0].split(";")[0].strip())] = ""
        elif line.startswith("    --hash") and current:
            current.append(line)
        else:
            continue
        name = canonicalize_name(current[0].split("==")[0].split(";")[0].strip())
        blocks[name] = "\n".join(current)
    return blocks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "wheels")
    args = parser.parse_args(argv)
    needed = runtime_closure([n for n in OURS if n != "janitor-common"]) - set(OURS)
    blocks = pinned_blocks(ROOT / "requirements" / "constraints.txt")
    missing = sorted(n for n in needed if not blocks.get(n))
    if missing:
        names = ", ".join(missing)
        print(f"wheels: not pinned in requirements/constraints.txt: {names} (run make lock)", file=sys.stderr)
        return 1
    shutil.rmtree(args.out, ignore_errors=True)
    pool = args.out / "all"
    pool.mkdir(parents=True)
    requirements = args.out / "requirements.txt"
    requirements.write_text("".join(blocks[n] + "\n" for n in sorted(needed)))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    print(f"wheels: {len(needed)} dependencies and {len(OURS)} packages of ours -> {pool}", flush=True)
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--require-hashes", "-r", str(requirements), "-w", str(pool)], check=True
    )
    for source in OURS.values():
        # setuptools copies into build/ and never removes what is gone from
        # src/: a module deleted or moved would live on in the wheel.
        shutil.rmtree(source / "build", ignore_errors=True)
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(pool), *map(str, OURS.values())],
        check=True,
    )
    by_name = {canonicalize_name(w.name.split("-")[0]): w for w in pool.glob("*.whl")}
    for service in OURS:
        if service == "janitor-common":
            continue
        closure = runtime_closure([service])
        absent = sorted(closure - set(by_name))
        if absent:
            print(f"wheels: no wheel for {', '.join(absent)}", file=sys.stderr)
            return 1
        target = args.out / service.removeprefix("janitor-")
        target.mkdir()
        for name in closure:
            # Copies, not hard links: Docker's legacy builder hashes a hard link
            # in the build context by its name only, so an image kept a stale
            # wheel whose content had changed (found by compose-test's import
            # check, 2026-11-29).
            shutil.copyfile(by_name[name], target / by_name[name].name)
        print(f"wheels: {len(closure)} wheels in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
