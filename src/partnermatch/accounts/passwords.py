"""Password rules and hashing (argon2id). Hashing is slow on purpose, so it runs off the event loop."""

import asyncio
import contextlib
import string
from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024
# The top 1,000 of Mark Burnett's "10 million passwords" list, as published in SecLists (MIT):
# https://github.com/danielmiessler/SecLists/blob/master/Passwords/Common-Credentials/10-million-password-list-top-1000.txt
COMMON_PASSWORDS_FILE = "common_passwords.txt"

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when an email is unknown, so that a login takes as long either way.
_DUMMY_HASH = _hasher.hash("partnermatch dummy password for unknown accounts")
UNUSABLE = "!"  # A hash no password matches: accounts that only use API tokens.


@cache
def common_passwords() -> frozenset[str]:
    text = files("partnermatch.accounts").joinpath(COMMON_PASSWORDS_FILE).read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def _repeats_a_shorter_string(value: str) -> bool:
    return any(
        len(value) % size == 0 and value == value[:size] * (len(value) // size)
        for size in range(1, len(value) // 2 + 1)
    )


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters long"
    folded = password.lower()
    if _common_with_suffix(folded) or _repeats_a_shorter_string(folded):
        return "is too common or too easy to guess"
    return None


_PADDING = frozenset(string.digits + string.punctuation + " ")


def _common_with_suffix(folded: str) -> bool:
    """A common password, perhaps with digits or punctuation appended ("password2024!")."""
    common = common_passwords()
    for end in range(len(folded), 3, -1):
        if folded[:end] in common and _PADDING.issuperset(folded[end:]):
            return True
    return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        if password_hash is None or password_hash == UNUSABLE:
            with contextlib.suppress(VerificationError):
                _hasher.verify(_DUMMY_HASH, password)
            return False
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)
