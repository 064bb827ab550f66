"""CSRF tokens: a per-session secret, sent masked so that no two pages carry the same token.

Masking (a random pad XOR the secret, as Django does) keeps the secret from being recovered by
compression side channels (BREACH) while any token minted from it stays valid for the session.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

MAX_TOKEN_CHARS = 512


def issue_token(secret: str) -> str:
    """A fresh token for a form or the htmx header, valid as long as `secret` is."""
    raw = secret.encode()
    pad = secrets.token_bytes(len(raw))
    masked = bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    return base64.urlsafe_b64encode(pad + masked).decode().rstrip("=")


def token_matches(secret: str, presented: str | None) -> bool:
    """Whether `presented` was issued from `secret` (compared in constant time)."""
    if not secret or not presented or len(presented) > MAX_TOKEN_CHARS:
        return False
    try:
        data = base64.urlsafe_b64decode(presented + "=" * (-len(presented) % 4))
    except (ValueError, binascii.Error):
        return False
    half = len(data) // 2
    if half == 0 or len(data) % 2:
        return False
    unmasked = bytes(a ^ b for a, b in zip(data[:half], data[half:], strict=True))
    return hmac.compare_digest(unmasked, secret.encode())
