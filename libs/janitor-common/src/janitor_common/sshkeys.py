"""OpenSSH public key lines: parsed and fingerprinted as ``ssh-keygen -lf`` does, without an SSH library.

``janitor-db add-worker-key`` stores keys and bzr-store's SSH server
compares them; both need the same reading of a key line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

KEY_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    @property
    def line(self) -> str:
        """The key as one ``authorized_keys`` line, without options."""
        return " ".join(p for p in (self.key_type, base64.b64encode(self.blob).decode(), self.comment) if p)


def parse_public_key(line: str) -> PublicKey:
    """One OpenSSH public key line (``TYPE BASE64 [COMMENT]``); ValueError saying what is wrong."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key line (TYPE BASE64 [COMMENT])")
    key_type, encoded = parts[0], parts[1]
    if key_type not in KEY_TYPES:
        raise ValueError(f"unsupported key type {key_type[:40]!r}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("the key's base64 part is not valid") from None
    # The blob starts with its own type name: a line whose parts disagree is no key.
    if len(blob) < 4:
        raise ValueError("the key is too short")
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length].decode("ascii", "replace") != key_type:
        raise ValueError("the key's type and its data disagree")
    return PublicKey(key_type, blob, parts[2].strip() if len(parts) > 2 else "")
