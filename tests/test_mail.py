"""The SMTP backend against a tiny SMTP server on loopback (a thread of this test): what it sends, how
it reads the server's refusals; and the file backend's erasure of development mail. The outbox that
calls the backend has its own tests (tests/outbox)."""

import asyncio
import base64
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from io import BufferedRWPair
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from partnermatch import mail
from partnermatch.mail import DeliveryFailed, FileMailer, Mail, SmtpMailer, mailer_for
from partnermatch.outbox.models import OutboxMessage
from partnermatch.outbox.repository import OutboxRepository
from partnermatch.settings import Settings
from tests.conftest import Account


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class FakeSmtpServer:
    """Just enough ESMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, QUIT.

    `refuse` lists recipients answered with 550; `silent` accepts connections and never greets;
    `hang_up_after` closes a connection after that many messages, as a server does with idle ones."""

    refuse: frozenset[str] = frozenset()
    silent: bool = False
    hang_up_after: int | None = None
    connections: int = 0
    noops: int = 0
    data_started: int = 0
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.socket.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _address = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            with connection:
                if self.silent:
                    while connection.recv(1024):
                        pass
                    continue
                self._session(connection.makefile("rwb"))

    def _session(self, file: BufferedRWPair) -> None:
        def reply(*lines: str) -> None:
            for i, line in enumerate(lines):
                code, text = line.split(" ", 1)
                separator = " " if i == len(lines) - 1 else "-"
                file.write(f"{code}{separator}{text}\r\n".encode())
            file.flush()

        reply("220 fake.invalid ESMTP")
        sender, recipients = "", []
        while raw := file.readline():
            command = raw.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb in {"EHLO", "HELO"}:
                reply("250 fake.invalid", "250 AUTH PLAIN")
            elif verb == "AUTH":
                _auth, _mechanism, payload = command.split(" ", 2)
                _zid, user, password = base64.b64decode(payload).decode().split("\0")
                self.logins.append((user, password))
                reply("235 2.7.0 authenticated")
            elif verb == "MAIL":
                sender = command[command.index("<") + 1 : command.index(">")]
                reply("250 2.1.0 ok")
            elif verb == "RCPT":
                recipient = command[command.index("<") + 1 : command.index(">")]
                if recipient in self.refuse:
                    reply("550 5.1.1 no such mailbox")
                else:
                    recipients.append(recipient)
                    reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.data_started += 1
                reply("354 end with .")
                lines = []
                while (line := file.readline()) not in {b".\r\n", b""}:
                    lines.append(line)
                if line == b"":
                    return  # the connection closed before the end of the data: nothing was taken
                self.messages.append(Received(sender, recipients, b"".join(lines)))
                reply("250 2.0.0 queued")
                sender, recipients = "", []
                if self.hang_up_after is not None and len(self.messages) % self.hang_up_after == 0:
                    return
            elif verb == "NOOP":
                self.noops += 1
                reply("250 2.0.0 ok")
            elif verb == "RSET":
                sender, recipients = "", []
                reply("250 2.0.0 ok")
            elif verb == "QUIT":
                reply("221 2.0.0 bye")
                return
            else:
                reply("502 5.5.2 not implemented")


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    server = FakeSmtpServer(refuse=frozenset({"nobody@example.org"}))
    yield server
    server.close()


def smtp_settings(port: int, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        var_dir=tmp_path,
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        **extra,  # type: ignore[arg-type]
    )


async def test_smtp_backend_logs_in_and_delivers(smtp_server: FakeSmtpServer, tmp_path: Path) -> None:
    settings = smtp_settings(smtp_server.port, tmp_path, smtp_user="mailer", smtp_password="s3cret pass")
    mailer = mailer_for(settings)
    assert isinstance(mailer, SmtpMailer)
    await mailer.send(Mail(to="anna@example.org", subject="Grüße aus Berlin", body="Hallo Anna\n"))
    assert smtp_server.logins == [("mailer", "s3cret pass")]
    [received] = smtp_server.messages
    assert received.recipients == ["anna@example.org"]
    assert received.sender == "noreply@partnermatch.invalid"
    message = message_from_bytes(received.data, policy=default_policy)
    assert message["To"] == "anna@example.org"
    assert message["Subject"] == "Grüße aus Berlin"
    body = message.get_body()
    assert body is not None
    assert body.get_content().splitlines() == ["Hallo Anna"]
    # Sent mail has left the service: nothing to erase here, and nothing was written to var/mail.
    assert await mailer.forget(["anna@example.org"]) == 0
    assert not (tmp_path / "mail").exists()


async def test_one_connection_carries_many_messages_and_a_closed_one_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeSmtpServer(hang_up_after=3)
    try:
        monkeypatch.setattr(mail, "MESSAGES_PER_CONNECTION", 5)
        mailer = mailer_for(smtp_settings(server.port, tmp_path))
        for number in range(7):
            await mailer.send(Mail(to=f"person{number}@example.org", subject="Hi", body="x\n"))
        # Three on the first connection, which the server then closed: the fourth found it closed at
        # its first command, before anything of it was handed over, and went on a new one; three more,
        # then the seventh on a third connection. None was lost, and no NOOP cost a round trip.
        assert [m.recipients for m in server.messages] == [[f"person{n}@example.org"] for n in range(7)]
        assert server.connections == 3
        assert server.noops == 0
        monkeypatch.setattr(mail, "MESSAGES_PER_CONNECTION", 2)
        for number in range(7, 11):
            await mailer.send(Mail(to=f"person{number}@example.org", subject="Hi", body="x\n"))
        await mailer.close()
        assert len(server.messages) == 11
        # At most two a connection now: renewed, not kept for ever (and replaced after each hang-up).
        assert server.connections == 5
    finally:
        server.close()


async def test_the_end_of_the_data_waits_for_ready_and_a_failed_ready_delivers_nothing(
    smtp_server: FakeSmtpServer, tmp_path: Path
) -> None:
    mailer = mailer_for(smtp_settings(smtp_server.port, tmp_path))
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sending = asyncio.create_task(
        mailer.send(Mail(to="anna@example.org", subject="Hi", body="x\n"), ready=gate)
    )
    for _ in range(500):
        if smtp_server.data_started:
            break
        await asyncio.sleep(0.01)
    # The data is under way, its end held back: the server has taken nothing yet.
    assert smtp_server.data_started == 1
    assert smtp_server.messages == []
    gate.set_result(None)
    await sending
    assert [m.recipients for m in smtp_server.messages] == [["anna@example.org"]]

    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("the database went away"))
    with pytest.raises(RuntimeError, match="database"):
        await mailer.send(Mail(to="ben@example.org", subject="Hi", body="x\n"), ready=failed)
    # Ben's data was cut off with the connection: the server discarded it; the next goes on a new one.
    await mailer.send(Mail(to="cem@example.org", subject="Hi", body="x\n"))
    await mailer.close()
    assert [m.recipients for m in smtp_server.messages] == [["anna@example.org"], ["cem@example.org"]]
    assert smtp_server.connections == 2


async def test_a_connection_idle_for_a_while_is_checked_before_it_carries_a_message(
    smtp_server: FakeSmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailer = mailer_for(smtp_settings(smtp_server.port, tmp_path))
    await mailer.send(Mail(to="anna@example.org", subject="Hi", body="x\n"))
    monkeypatch.setattr(mail, "IDLE_CHECK_SECONDS", 0.0)
    await mailer.send(Mail(to="ben@example.org", subject="Hi", body="x\n"))
    await mailer.close()
    # The server might have closed it while idle: NOOP asked, answered, and the connection reused.
    assert smtp_server.noops == 1
    assert smtp_server.connections == 1
    assert [m.recipients for m in smtp_server.messages] == [["anna@example.org"], ["ben@example.org"]]


async def test_a_refused_recipient_is_logged_and_a_bounce(
    smtp_server: FakeSmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = mailer_for(smtp_settings(smtp_server.port, tmp_path))
    with caplog.at_level(logging.ERROR, logger="partnermatch.mail"), pytest.raises(DeliveryFailed) as failed:
        await mailer.send(Mail(to="nobody@example.org", subject="Hi", body="token=secret\n"))
    assert failed.value.bounced
    assert failed.value.permanent
    assert "550" in failed.value.reason
    assert smtp_server.messages == []
    [record] = caplog.records
    assert "nobody@example.org" in record.getMessage()
    assert "secret" not in record.getMessage()  # the body, with its link, stays out of the log


async def test_a_server_that_does_not_answer_times_out(tmp_path: Path) -> None:
    server = FakeSmtpServer(silent=True)
    try:
        mailer = mailer_for(smtp_settings(server.port, tmp_path, smtp_timeout_seconds=0.3))
        started = time.monotonic()
        with pytest.raises(DeliveryFailed) as failed:
            await mailer.send(Mail(to="anna@example.org", subject="Hi", body="x\n"))
        assert time.monotonic() - started < 3
        assert not failed.value.permanent  # tried again later
    finally:
        server.close()


async def test_an_unreachable_server_is_a_temporary_failure(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    mailer = mailer_for(smtp_settings(port, tmp_path, smtp_timeout_seconds=1))
    with pytest.raises(DeliveryFailed) as failed:
        await mailer.send(Mail(to="anna@example.org", subject="Hi", body="x\n"))
    assert not failed.value.permanent
    assert not failed.value.bounced


@pytest.fixture
def app_sends_smtp(
    settings: Settings, smtp_server: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> FakeSmtpServer:
    # The app reads its (session-wide) settings on every request; these changes end with the test.
    for name, value in {
        "mail_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "smtp_starttls": False,
    }.items():
        monkeypatch.setattr(settings, name, value)
    return smtp_server


async def test_an_invitation_goes_out_by_smtp_after_the_commit_and_a_bounce_is_kept(
    app_sends_smtp: FakeSmtpServer,
    member_client: httpx.AsyncClient,
    member: Account,
    db_session: AsyncSession,
) -> None:
    invitations = f"/api/v1/companies/{member.user.company_id}/invitations"
    sent = await member_client.post(invitations, json={"email": "anna@example.org"})
    assert sent.status_code == 201, sent.text
    [received] = app_sends_smtp.messages
    assert received.recipients == ["anna@example.org"]
    assert b"accept-invitation?token=" in received.data

    # The invitation is saved whatever the mail server says afterwards: the answer does not wait for it.
    bounced = await member_client.post(invitations, json={"email": "nobody@example.org"})
    assert bounced.status_code == 201, bounced.text
    listed = (await member_client.get(invitations)).json()
    assert sorted(i["email"] for i in listed) == ["anna@example.org", "nobody@example.org"]
    rows = (await db_session.execute(select(OutboxMessage.to_address, OutboxMessage.status))).all()
    assert sorted(rows) == [("anna@example.org", "sent"), ("nobody@example.org", "failed")]
    assert await OutboxRepository(db_session).undeliverable(["nobody@example.org"]) == {"nobody@example.org"}


async def test_the_file_backend_forgets_mail_to_given_addresses(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "mail", "PartnerMatch <noreply@partnermatch.invalid>")
    long_address = "a" * 90 + "@example.org"  # longer than the file name keeps
    for to in ("Anna@Example.org", "bert@example.org", long_address, "anna@example.org"):
        await mailer.send(Mail(to=to, subject="Hi", body="x\n"))
    assert await mailer.forget(["anna@example.org", long_address.upper()]) == 3
    left = [message_from_bytes(p.read_bytes())["To"] for p in (tmp_path / "mail").glob("*.eml")]
    assert left == ["bert@example.org"]
    assert await mailer.forget([]) == 0
