"""Schemathesis against the app's own OpenAPI schema, served by the real server on each backend.

The server commits for real, so it gets a database of its own rather than the suite's.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from partnermatch.accounts.service import AccountService
from partnermatch.db import _upgrade_blocking, session_scope
from partnermatch.enums import UserRole
from partnermatch.settings import Settings
from tests.companies.test_api import approved_company
from tests.conftest import create_database, drop_database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _create_tokens(settings: Settings) -> dict[str, str]:
    """An API token of an admin, and of a verified member of an approved company: the API as staff and
    as a company's member see it."""
    async with session_scope(settings) as session:
        accounts = AccountService(session, settings=settings)
        admin = await accounts.create_user("schemathesis@example.org", None, role=UserRole.ADMIN)
        _token, admin_secret = await accounts.create_api_token(admin.id, "schemathesis")
        company = await approved_company(session, "Schemathesis GmbH")
        member = await accounts.create_user(
            "schemathesis-member@example.org",
            None,
            role=UserRole.MEMBER,
            company_id=company.id,
            verified=True,
        )
        _token, member_secret = await accounts.create_api_token(member.id, "schemathesis")
        return {"staff": admin_secret, "member": member_secret}


@pytest.fixture(scope="session")
def live_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    scratch = tmp_path_factory.mktemp("live")
    url = create_database(backend, scratch)
    server_settings = Settings(database_url=url, var_dir=scratch)
    with ThreadPoolExecutor(1) as pool:  # Alembic's env runs its own event loop
        pool.submit(_upgrade_blocking, server_settings, "head").result()
        tokens = pool.submit(asyncio.run, _create_tokens(server_settings)).result()
    port = _free_port()
    env = {**os.environ, "PARTNERMATCH_DATABASE_URL": url, "PARTNERMATCH_VAR_DIR": str(scratch)}
    log = (scratch / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "partnermatch", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server, scratch / "server.log")
        yield base, tokens
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
        drop_database(url)


def _wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"server did not start: {log.read_text()}")


# positive_data_acceptance: schema-valid input may still break a domain rule (an unknown NACE code is
# well-formed), which is a 422 by design. allow_header_conformance: Litestar's automatic OPTIONS
# response lists only some of a path's methods; its 405 responses carry the right Allow header.
# use_after_free: DELETE archives (companies, missions) or closes (leads) by design, the row stays
# readable. Schemathesis runs as an admin, who may see every object, so object-level authorization
# is the authorization matrix's job (tests/accounts/test_access_matrix.py).
EXCLUDED_CHECKS = (
    "positive_data_acceptance,allow_header_conformance,use_after_free,object_level_authorization"
)


# As staff, schemathesis reaches every operation; as a member, it checks what the others answer a member
# (their 403 and 404 problems must conform too). Its stateful phase chains operations along the links it
# infers from the schema (131 of them). The member's run goes first: the admin's run may revoke tokens or
# erase accounts (its stateful phase follows real ids), the member's among them.
@pytest.mark.parametrize("role", ["member", "staff"])
def test_api_conforms_to_its_schema(
    live_server: tuple[str, dict[str, str]], role: str, tmp_path: Path
) -> None:
    base, tokens = live_server
    token = tokens[role]
    examples = os.environ.get("PARTNERMATCH_TEST_SCHEMATHESIS_EXAMPLES", "30")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base}/schema/openapi.json",
        f"--header=Authorization: Bearer {token}",
        "--checks=all",
        f"--exclude-checks={EXCLUDED_CHECKS}",
        f"--max-examples={examples}",
        # One worker: CPython 3.11 can fail with "AST constructor recursion depth mismatch" when
        # schemathesis compiles in two threads at once (seen once in CI on SQLite).
        "--workers=1",
        "--seed=20261126",
        f"--report-dir={tmp_path}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stdout[-8_000:] + result.stderr[-3_000:]
    assert "API Operations:" in result.stdout
    # The stateful phase ran (it is skipped, with a ⏭, when no links are found).
    assert "✅ Stateful" in result.stdout, result.stdout[-3_000:]
