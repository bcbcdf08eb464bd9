"""A local transport that cannot leave its root, even through symlinks.

Breezy's own jail (``jail_info``) checks where control directories are
opened, and a chroot transport checks path strings; neither stops a symlink
planted inside the store from leading elsewhere. This transport checks every
path it touches: the path must lie under the root, and no component below
the root may be a symlink that leads outside it.

The check runs on every file operation of every smart request, so it is
cheap: only components below the root are looked at (one ``lstat`` each),
and directories already verified are remembered for the rest of the request
(all clones of one request's transport share the cache). The same transport
serves anonymous clients read-only, without a second decorating layer.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from breezy import errors, urlutils
from breezy.transport.local import LocalTransport


class Jail:
    """The root and what one request has already verified below it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.verified: set[str] = set()

    def check(self, path: str) -> str:
        norm = os.path.normpath(path)
        root = self.root
        if norm == root:
            return path
        if not norm.startswith(root + os.sep):
            raise errors.PathNotChild(path, root)
        parts = norm[len(root) + 1 :].split(os.sep)
        prefix = root
        for i, part in enumerate(parts):
            prefix = prefix + os.sep + part
            if prefix in self.verified:
                continue
            try:
                st = os.lstat(prefix)
            except (FileNotFoundError, NotADirectoryError):
                return path  # nothing exists from here on, so no symlink either
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(prefix)
                if real != root and not real.startswith(root + os.sep):
                    raise errors.PathNotChild(path, root)
                if i + 1 < len(parts):
                    # Follow a symlink that stays inside, checking the rest from its target.
                    self.check(os.path.join(real, *parts[i + 1 :]))
                return path
            elif stat.S_ISDIR(st.st_mode):
                self.verified.add(prefix)
        return path


class JailedLocalTransport(LocalTransport):  # type: ignore[misc]
    def __init__(self, base: str, jail: Jail | None = None, *, readonly: bool = False) -> None:
        super().__init__(base)
        self._jail = jail if jail is not None else Jail(self._local_base)
        self._readonly = readonly

    # -- confinement

    def _abspath(self, relative_reference: str) -> str:
        return self._jail.check(super()._abspath(relative_reference))

    def local_abspath(self, relpath: str) -> str:
        return self._jail.check(super().local_abspath(relpath))

    def clone(self, offset: str | None = None) -> JailedLocalTransport:
        if offset is None:
            return JailedLocalTransport(self.base, self._jail, readonly=self._readonly)
        abspath = self.abspath(offset)
        self._jail.check(urlutils.local_path_from_url(abspath))
        return JailedLocalTransport(abspath, self._jail, readonly=self._readonly)

    # -- read-only view for anonymous clients

    def is_readonly(self) -> bool:
        return self._readonly

    def _refuse(self, path: str) -> None:
        if self._readonly:
            raise errors.TransportNotPossible("readonly transport")

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
        self._refuse(rel_to)
        return super().rename(rel_from, rel_to)

    def move(self, rel_from: str, rel_to: str) -> Any:
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


def jailed_transport(path: str, *, readonly: bool = False) -> JailedLocalTransport:
    return JailedLocalTransport(urlutils.local_path_to_url(path), readonly=readonly)
