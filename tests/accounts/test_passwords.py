import pytest

from partnermatch.accounts.passwords import common_passwords, hash_password, password_problem, verify_password


def test_the_common_password_list_ships_with_the_package() -> None:
    assert len(common_passwords()) >= 900
    assert "qwertyuiop" in common_passwords()


@pytest.mark.parametrize(
    "password",
    ["short", "qwertyuiop12", "Password2024!", "iloveyouiloveyou", "abcabcabcabc", "1234567890123"],
)
def test_weak_passwords_are_refused(password: str) -> None:
    assert password_problem(password) is not None


@pytest.mark.parametrize("password", ["correct horse battery staple", "Spree-Ufer 7 im Nebel"])
def test_long_uncommon_passwords_pass(password: str) -> None:
    assert password_problem(password) is None


async def test_argon2id_hashes_verify_and_unknown_accounts_fail() -> None:
    hashed = await hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "correct horse battery staple")
    assert not await verify_password(hashed, "correct horse battery stapler")
    assert not await verify_password(None, "anything at all")
    assert not await verify_password("!", "anything at all")
