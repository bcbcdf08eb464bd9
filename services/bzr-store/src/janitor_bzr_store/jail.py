"""A local transport that cannot leave its root, even through symlinks.

Breezy's own jail (``jail_info``) checks where control directories are
opened, and a chroot transport checks path strings; neither stops a symlink
planted inside the store from leading elsewhere. This transport resolves
every path it touches and refuses any that ends up outside the root, and its
clones carry the same root.
"""

from __future__ import annotations

import os

from breezy import errors, urlutils
from breezy.transport.local import LocalTransport


class JailedLocalTransport(LocalTransport):  # type: ignore[misc]
    def __init__(self, base: str, root: str | None = None) -> None:
        super().__init__(base)
        self._jail_root = os.path.realpath(root if root is not None else self._local_base)

    def _check(self, path: str) -> str:
        real = os.path.realpath(path)
        if real != self._jail_root and not real.startswith(self._jail_root + os.sep):
            raise errors.PathNotChild(path, self._jail_root)
        return path

    def _abspath(self, relative_reference: str) -> str:
        return self._check(super()._abspath(relative_reference))

    def local_abspath(self, relpath: str) -> str:
        return self._check(super().local_abspath(relpath))

    def clone(self, offset: str | None = None) -> JailedLocalTransport:
        if offset is None:
            return JailedLocalTransport(self.base, self._jail_root)
        abspath = self.abspath(offset)
        self._check(urlutils.local_path_from_url(abspath))
        return JailedLocalTransport(abspath, self._jail_root)


def jailed_transport(path: str) -> JailedLocalTransport:
    return JailedLocalTransport(urlutils.local_path_to_url(path))
