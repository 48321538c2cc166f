"""API key tokens: how they look, how they are made and how they are checked.  No I/O.

A token is ``tlk_<id>_<secret>``: ``id`` is 16 hex digits, stored in clear and
used to find the key; ``secret`` is 32 random bytes (256 bits) in URL-safe
base64.  The ledger stores the SHA-256 of the whole token, never the token.

Why plain SHA-256 and not a slow password hash (argon2, PBKDF2): those exist to
make guessing a *low-entropy* password from a stolen hash expensive.  A 256-bit
random secret cannot be guessed whatever the hash speed, while a slow hash
would cost every API request milliseconds of CPU (the availability path answers
in about one).  Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "tlk"
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")


def new_token() -> tuple[str, str]:
    """A fresh (key id, token)."""
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id of a well-formed token, else None."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def matches(token: str, secret_sha256: str) -> bool:
    return hmac.compare_digest(digest(token), secret_sha256)
