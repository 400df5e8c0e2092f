"""Signed single-purpose tokens for the links of a digest: a click on a lead, unsubscribing.

A token is ``<payload>.<signature>``, both URL-safe base64 without padding: the payload is compact JSON
(the caller's fields and ``iat``, the time it was signed, in whole seconds), the signature its
HMAC-SHA256 under a key derived from the installation's secret and the token's *purpose*. So a token
signed for one purpose never verifies for another (a click token is no unsubscribe token), and nothing
is stored: the link itself is the proof. The payload is readable by whoever has the link (it is signed,
not encrypted): it holds ids, never anything secret.

Unsubscribe tokens do not expire (RFC 8058: the link in an old message must keep working); a click token
may be checked against a maximum age.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

from partnermatch.settings import Settings

Payload = dict[str, str | int]
ISSUED_AT = "iat"
# Names the derivation, so that these keys are never the ones another use of the secret derives.
_KEY_LABEL = b"partnermatch.digests.tokens/v1:"


def _key(settings: Settings, purpose: str) -> bytes:
    return _derived_key(settings.resolved_secret_key(), purpose)


@lru_cache(maxsize=16)
def _derived_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), _KEY_LABEL + purpose.encode(), hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(settings: Settings, purpose: str, body: str) -> str:
    return _encode(hmac.new(_key(settings, purpose), body.encode("ascii"), hashlib.sha256).digest())


def sign(settings: Settings, purpose: str, payload: Payload, *, now: datetime | None = None) -> str:
    """A token that :func:`verify` with the same ``purpose`` gives ``payload`` back from."""
    if ISSUED_AT in payload:
        raise ValueError(f"{ISSUED_AT!r} is the token's own field")
    issued = int((now or datetime.now(UTC)).timestamp())
    text = json.dumps({**payload, ISSUED_AT: issued}, separators=(",", ":"), sort_keys=True)
    body = _encode(text.encode())
    return f"{body}.{_signature(settings, purpose, body)}"


def verify(
    settings: Settings,
    purpose: str,
    token: str,
    *,
    max_age_days: int | None = None,
    now: datetime | None = None,
) -> Payload | None:
    """The payload of a token signed for ``purpose`` (without ``iat``), or None: malformed, forged,
    tampered with, signed for another purpose, or older than ``max_age_days``."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature or not body.isascii() or not signature.isascii():
        return None
    if not hmac.compare_digest(signature, _signature(settings, purpose, body)):
        return None
    try:
        decoded = json.loads(_decode(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(decoded, dict):
        return None
    issued = decoded.pop(ISSUED_AT, None)
    if not _is_int(issued):
        return None
    if max_age_days is not None:
        age = (now or datetime.now(UTC)) - datetime.fromtimestamp(issued, UTC)
        if age > timedelta(days=max_age_days):
            return None
    payload: Payload = {}
    for name, value in decoded.items():
        if not isinstance(value, str) and not _is_int(value):
            return None
        payload[str(name)] = value
    return payload


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ----------------------------------------------------------------- the digest's two tokens

CLICK = "digest-click"
UNSUBSCRIBE = "digest-unsubscribe"
# A lead's link in a digest records its click for this long; after that it is a dead link (404).
CLICK_MAX_AGE_DAYS = 180


@dataclass(frozen=True)
class Click:
    """Who opened which lead of their digest, and where the digest listed it."""

    user_id: UUID
    company_id: UUID
    lead_id: UUID
    position: int


def click_token(
    settings: Settings,
    *,
    user_id: UUID,
    company_id: UUID,
    lead_id: UUID,
    position: int,
    now: datetime | None = None,
) -> str:
    # Short keys and hex ids: the token is part of a URL that mail clients show and wrap.
    payload: Payload = {"u": user_id.hex, "c": company_id.hex, "l": lead_id.hex, "p": position}
    return sign(settings, CLICK, payload, now=now)


def read_click(settings: Settings, token: str, *, now: datetime | None = None) -> Click | None:
    payload = verify(settings, CLICK, token, max_age_days=CLICK_MAX_AGE_DAYS, now=now)
    if payload is None:
        return None
    position = payload.get("p")
    user_id, company_id, lead_id = (_uuid(payload.get(key)) for key in ("u", "c", "l"))
    if user_id is None or company_id is None or lead_id is None:
        return None
    if not isinstance(position, int) or isinstance(position, bool) or position < 1:
        return None
    return Click(user_id, company_id, lead_id, position)


def unsubscribe_token(settings: Settings, user_id: UUID) -> str:
    return sign(settings, UNSUBSCRIBE, {"u": user_id.hex})


def read_unsubscribe(settings: Settings, token: str) -> UUID | None:
    """The user whose digest the token stops; it never expires (RFC 8058)."""
    payload = verify(settings, UNSUBSCRIBE, token)
    return None if payload is None else _uuid(payload.get("u"))


def _uuid(value: str | int | None) -> UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return UUID(hex=value)
    except ValueError:
        return None
