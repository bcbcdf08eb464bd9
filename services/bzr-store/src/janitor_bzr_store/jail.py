"""A local transport that cannot leave its root, even through symlinks.

Breezy's own jail (``jail_info``) checks where control directories are
opened, and a chroot transport checks path strings; neither stops a symlink
planted inside the store from leading elsewhere. This transport checks every
path it touches: the path must lie under the root, and no component below
the root may be a symlink that leads outside it.

The check runs on every file operation of every smart request, so it is
cheap: a path's directory is verified once per request (one ``lstat`` per
component below the root, remembered; all clones of one request's
transport share what is remembered), then each path costs one ``lstat``.
The same transport serves anonymous clients read-only, without a second
decorating layer.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from typing import Any

from breezy import errors, urlutils
from breezy.transport import NoSuchFile
from breezy.transport.local import LocalTransport


class Jail:
    """The root and what one request has already verified below it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._inside = self.root + os.sep
        # Directories below the root seen to be real directories, or symlinks
        # staying inside it, mapped to where they really are.
        self.verified: dict[str, str] = {}

    def check(self, path: str) -> str:
        """``path`` unchanged if it stays inside the root; else PathNotChild."""
        norm = os.path.normpath(path)
        if norm == self.root:
            return path
        if not norm.startswith(self._inside):
            raise errors.PathNotChild(path, self.root)
        parent, _, name = norm.rpartition(os.sep)
        real_parent = self._directory(parent)
        if real_parent is not None:
            self._follow(real_parent + os.sep + name, path)
        return path

    def _directory(self, path: str) -> str | None:
        """Where the directory ``path`` (normalised, inside the root) really is; None if it is none."""
        if path == self.root:
            return path
        known = self.verified.get(path)
        if known is not None:
            return known
        parent, _, name = path.rpartition(os.sep)
        real_parent = self._directory(parent)
        if real_parent is None:
            return None  # nothing exists from here on, so no symlink either
        real = self._follow(real_parent + os.sep + name, path)
        if real is not None:
            self.verified[path] = real
        return real

    def _follow(self, candidate: str, path: str) -> str | None:
        """The real directory ``candidate`` is (None if it is not one); PathNotChild if it leads out."""
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(candidate)
            if real != self.root and not real.startswith(self._inside):
                raise errors.PathNotChild(path, self.root)
            return real if os.path.isdir(real) else None
        return candidate if stat.S_ISDIR(st.st_mode) else None


# Breezy's lock directories: .bzr/lock (old formats) and .bzr/<branch|repository|checkout>/lock.
LOCK_PATH = re.compile(r"/\.bzr/(?:[^/]+/)?lock(?:/|$)")
BZR_DIR_SUFFIXES = ("/.bzr", "/.bzr/branch", "/.bzr/repository", "/.bzr/checkout")


class JailedLocalTransport(LocalTransport):  # type: ignore[misc]
    def __init__(
        self,
        base: str,
        jail: Jail | None = None,
        *,
        readonly: bool = False,
        may_write: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(base)
        self._jail = jail if jail is not None else Jail(self._local_base)
        self._readonly = readonly
        # For a worker limited by grants: whether it may write a local path.
        self._may_write = may_write

    # -- confinement

    def _abspath(self, relative_reference: str) -> str:
        return self._hide_locks(self._jail.check(super()._abspath(relative_reference)))

    def local_abspath(self, relpath: str) -> str:
        return self._hide_locks(self._jail.check(super().local_abspath(relpath)))

    def _hide_locks(self, path: str) -> str:
        """Anonymous clients see no lock directory: a held lock's info carries its token."""
        if self._readonly and "lock" in path and LOCK_PATH.search(path) is not None:
            raise NoSuchFile(path)
        return path

    def list_dir(self, relpath: str) -> list[str]:
        names: list[str] = super().list_dir(relpath)
        if self._readonly and self._abspath(relpath).rstrip("/").endswith(BZR_DIR_SUFFIXES):
            return [n for n in names if n != "lock"]
        return names

    def clone(self, offset: str | None = None) -> JailedLocalTransport:
        base = self.base if offset is None else self.abspath(offset)
        if offset is not None:
            self._jail.check(urlutils.local_path_from_url(base))
        return JailedLocalTransport(base, self._jail, readonly=self._readonly, may_write=self._may_write)

    # -- read-only view for anonymous clients

    def is_readonly(self) -> bool:
        return self._readonly

    def _refuse(self, path: str) -> None:
        if self._readonly:
            raise errors.TransportNotPossible("readonly transport")
        if self._may_write is not None and not self._may_write(self._abspath(path)):
            raise errors.PermissionDenied(path, "outside this worker's grants")

    def put_file(self, relpath: str, f: Any, mode: Any = None) -> Any:
        self._refuse(relpath)
        return super().put_file(relpath, f, mode)

    def put_bytes(self, relpath: str, raw_bytes: bytes, mode: Any = None) -> Any:
        self._refuse(relpath)
        return super().put_bytes(relpath, raw_bytes, mode)

    def put_file_non_atomic(self, relpath: str, f: Any, *args: Any, **kwargs: Any) -> Any:
        self._refuse(relpath)
        return super().put_file_non_atomic(relpath, f, *args, **kwargs)

    def put_bytes_non_atomic(self, relpath: str, raw_bytes: bytes, *args: Any, **kwargs: Any) -> Any:
        self._refuse(relpath)
        return super().put_bytes_non_atomic(relpath, raw_bytes, *args, **kwargs)

    def mkdir(self, relpath: str, mode: Any = None) -> Any:
        self._refuse(relpath)
        return super().mkdir(relpath, mode)

    def open_write_stream(self, relpath: str, mode: Any = None) -> Any:
        self._refuse(relpath)
        return super().open_write_stream(relpath, mode)

    def append_file(self, relpath: str, f: Any, mode: Any = None) -> Any:
        self._refuse(relpath)
        return super().append_file(relpath, f, mode)

    def append_bytes(self, relpath: str, data: bytes, mode: Any = None) -> Any:
        self._refuse(relpath)
        return super().append_bytes(relpath, data, mode)

    def copy(self, rel_from: str, rel_to: str) -> Any:
        self._refuse(rel_to)
        return super().copy(rel_from, rel_to)

    def rename(self, rel_from: str, rel_to: str) -> Any:
        self._refuse(rel_from)
        self._refuse(rel_to)
        return super().rename(rel_from, rel_to)

    def move(self, rel_from: str, rel_to: str) -> Any:
        self._refuse(rel_from)
        self._refuse(rel_to)
        return super().move(rel_from, rel_to)

    def delete(self, relpath: str) -> Any:
        self._refuse(relpath)
        return super().delete(relpath)

    def delete_tree(self, relpath: str) -> Any:
        self._refuse(relpath)
        return super().delete_tree(relpath)

    def rmdir(self, relpath: str) -> Any:
        self._refuse(relpath)
        return super().rmdir(relpath)

    def lock_write(self, relpath: str) -> Any:
        self._refuse(relpath)
        return super().lock_write(relpath)

    def symlink(self, source: str, link_name: str) -> Any:
        raise errors.TransportNotPossible("symlinks are not allowed in the store")

    def hardlink(self, source: str, link_name: str) -> Any:
        raise errors.TransportNotPossible("hard links are not allowed in the store")


def jailed_transport(
    path: str, *, readonly: bool = False, may_write: Callable[[str], bool] | None = None
) -> JailedLocalTransport:
    return JailedLocalTransport(urlutils.local_path_to_url(path), readonly=readonly, may_write=may_write)
