"""How a message leaves the service: `mailer_for(settings)`, the transport of the mail outbox.

Nothing else sends: domains write messages to the outbox (`partnermatch.outbox`) in their transaction,
and its delivery job hands them to the mailer after the commit. Two backends, chosen by
PARTNERMATCH_MAIL_BACKEND: `file` (development) writes each message as an .eml file under var_dir/mail
and logs it; `smtp` hands it to an SMTP server with the standard library, in a worker thread so the
event loop never waits on the network. A failed delivery raises :class:`DeliveryFailed`, saying whether
the server refused it for good (a 5xx answer) or it may work later."""

import asyncio
import binascii
import io
import logging
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.charset import BASE64, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Protocol

from partnermatch.settings import Settings

logger = logging.getLogger("partnermatch.mail")
# Messages handed over on one SMTP connection before it is renewed (servers cap it, often at 100).
MESSAGES_PER_CONNECTION = 100
# A connection idle longer than this is checked with NOOP before the next message (servers close idle
# ones); within a batch it is not, which would cost a round trip per message.
IDLE_CHECK_SECONDS = 5.0
# The server's "go ahead" to DATA (RFC 5321 4.2.2).
DATA_GOES_ON = 354
LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    html: str | None = None
    # Extra headers (List-Unsubscribe, ...).
    headers: tuple[tuple[str, str], ...] = ()
    # Stable for one outbox message, so that a repeated send is recognisable as the same message.
    message_id: str | None = None


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False, bounced: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # The server refused this message for good (5xx): sending it again would be refused again.
        self.permanent = permanent or bounced
        # ... because of the recipient's address: no further mail should go there.
        self.bounced = bounced


class Mailer(Protocol):
    async def send(self, mail: Mail, *, ready: Awaitable[object] | None = None) -> None:
        """Deliver, or raise DeliveryFailed (logged) when it cannot. With ``ready``, the message is not
        handed over for good (for SMTP: the end of its data is held back) until ``ready`` is done; if
        ``ready`` raises, nothing of the message was delivered and the error passes on."""

    async def close(self) -> None:
        """Let go of what the backend holds open (a connection); the next message opens it again."""

    async def forget(self, addresses: Iterable[str]) -> int:
        """Remove the copies of messages to these addresses that the backend keeps (GDPR erasure);
        how many were removed."""


# Encoded words in base64: the email package's default for UTF-8 measures both encodings character by
# character to pick the shorter, which cost a German digest more than its body did.
UTF8_WORDS = Charset("utf-8")
UTF8_WORDS.header_encoding = BASE64
# The longest line SMTP carries (RFC 5321), without its CRLF.
SMTP_LINE = 998
# Headers are not folded below that: a folded List-Unsubscribe reads back with a leading space.
OUTGOING = compat32.clone(max_line_length=SMTP_LINE)


def compose(sender: str, mail: Mail) -> Message:
    """The message as it goes out: text, or text and HTML as alternatives, UTF-8 in quoted-printable
    (links stay readable in the raw message).

    Built with the email package's classic (compat32) classes: its default policy parses every header
    it is given, which made composing a digest cost more than handing it to the mail server."""
    text = _text_part(mail.body, "plain")
    message: Message = text
    if mail.html is not None:
        message = MIMEMultipart("alternative", policy=OUTGOING)
        message.attach(text)
        message.attach(_text_part(mail.html, "html"))
    message["From"] = _header(sender)
    message["To"] = _header(mail.to)
    message["Subject"] = _header(mail.subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = mail.message_id or make_msgid(domain="partnermatch.invalid")
    for name, value in mail.headers:
        message[name] = _header(value)
    return message


def _text_part(body: str, subtype: str) -> Message:
    """7bit where the text allows (ASCII, lines within SMTP's 998), else quoted-printable UTF-8."""
    if body.isascii() and all(len(line) <= SMTP_LINE for line in body.splitlines()):
        return MIMEText(body, subtype, "us-ascii", policy=OUTGOING)
    part = MIMENonMultipart("text", subtype, policy=OUTGOING, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    # binascii's encoder (C) rather than the email package's (Python): a digest's HTML part took
    # longer to encode than to hand over. Same rules (RFC 2045: lines of at most 76, soft breaks).
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _wire_bytes(message: Message) -> bytes:
    """The message as SMTP carries it (CRLF line ends; the dots are stuffed by smtplib)."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=message.policy).flatten(message, linesep="\r\n")
    return buffer.getvalue()


def _header(value: str) -> str:
    # RFC 2047 for anything beyond ASCII ("Grüße", a company's name in a subject).
    return value if value.isascii() else Header(value, UTF8_WORDS).encode()


def _folded(addresses: Iterable[str]) -> set[str]:
    return {a.strip().lower() for a in addresses if a and a.strip()}


class FileMailer:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, mail: Mail, *, ready: Awaitable[object] | None = None) -> None:
        message = compose(self.sender, mail)
        if ready is not None:
            await ready
        self.directory.mkdir(parents=True, exist_ok=True)
        # Sortable by time, unique, and safe as a file name whatever the address holds.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", mail.to)[:80]
        path = self.directory / f"{stamp}-{recipient}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(message.as_bytes())
        logger.info("mail to %s (%s) written to %s", mail.to, mail.subject, path)

    async def close(self) -> None:
        return None

    async def forget(self, addresses: Iterable[str]) -> int:
        wanted = _folded(addresses)
        if not wanted or not self.directory.is_dir():
            return 0
        # The header decides, not the file name, which is truncated and sanitised.
        parser = BytesHeaderParser(policy=default_policy)
        removed = 0
        for path in self.directory.glob("*.eml"):
            with path.open("rb") as file:
                headers = parser.parse(file)
            recipients = _folded(address for _name, address in getaddresses(headers.get_all("To", [])))
            if recipients & wanted:
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            logger.info("erasure: removed %d development mail file(s) from %s", removed, self.directory)
        return removed


class SmtpMailer:
    """Hands messages to an SMTP server over one connection, opened at the first message and reused
    until :meth:`close` (or :data:`MESSAGES_PER_CONNECTION`, or an error): the outbox's delivery sends
    its batches through one mailer. A reused connection is checked with NOOP first, so one the server
    closed while idle is replaced before a message is handed over, not after."""

    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.user = settings.smtp_user
        self.password = settings.smtp_password.get_secret_value()
        self.starttls = settings.smtp_starttls
        self.ssl = settings.smtp_ssl
        self.timeout = settings.smtp_timeout_seconds
        self._client: smtplib.SMTP | None = None
        self._sent_on_client = 0
        self._last_used = 0.0
        # Loading the system's certificates costs tens of milliseconds: once per mailer, not per message.
        self._tls: ssl.SSLContext | None = None

    async def send(self, mail: Mail, *, ready: Awaitable[object] | None = None) -> None:
        message = compose(self.sender, mail)
        try:
            # Everything but the end of the data goes while ``ready`` (the outbox's mark of the message
            # before) is under way; the server takes the message only at that end.
            await asyncio.to_thread(self._start, message, mail.to)
        except (OSError, smtplib.SMTPException) as error:
            raise await self._failed(mail, error) from error
        if ready is not None:
            try:
                await ready
            except BaseException:
                # Unfinished data: the server discards the message when the connection closes.
                await asyncio.to_thread(self._drop)
                raise
        try:
            await asyncio.to_thread(self._finish)
        except (OSError, smtplib.SMTPException) as error:
            raise await self._failed(mail, error) from error
        logger.info("mail to %s (%s) sent through %s:%d", mail.to, mail.subject, self.host, self.port)

    async def _failed(self, mail: Mail, error: OSError | smtplib.SMTPException) -> DeliveryFailed:
        await asyncio.to_thread(self._drop)
        failure = _failure(error)
        # The address is logged, the body (which may hold a one-time link) is not.
        logger.error(
            "mail to %s (%s) not sent through %s:%d (%s): %r",
            mail.to,
            mail.subject,
            self.host,
            self.port,
            "refused" if failure.permanent else "temporary",
            error,
        )
        return failure

    async def close(self) -> None:
        await asyncio.to_thread(self._quit)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _connected(self) -> tuple[smtplib.SMTP, bool]:
        """The connection for the next message, and whether it is known to be open (new, or answered
        NOOP). One used within :data:`IDLE_CHECK_SECONDS` is taken as it is."""
        if self._client is not None and self._sent_on_client < MESSAGES_PER_CONNECTION:
            if time.monotonic() - self._last_used < IDLE_CHECK_SECONDS:
                return self._client, False
            try:
                if self._client.noop()[0] == 250:
                    return self._client, True
            except (OSError, smtplib.SMTPException):
                pass
        self._drop()
        client: smtplib.SMTP
        if self.ssl:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._tls_context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            # The end of the data is a small write after a large one (see send): with Nagle's algorithm
            # it would wait for the server's delayed acknowledgement, 40 ms on Linux.
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.starttls and not self.ssl:
                client.starttls(context=self._tls_context())
            if self.user:
                client.login(self.user, self.password)
        except BaseException:
            client.close()
            raise
        self._client, self._sent_on_client = client, 0
        return client, True

    def _start(self, message: Message, to: str) -> None:
        """One SMTP transaction up to the end of its data (smtplib's sendmail and data, step by step, for
        one recipient): so that it is known whether the server had taken anything when a connection
        turns out closed, and so that the end can wait (:meth:`send`)."""
        data = _wire_bytes(message)
        client, known_open = self._connected()
        try:
            self._mail_from(client, to)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            if known_open:
                raise
            # The server closed a connection it had just answered on (its cap on messages per
            # connection): nothing of this message reached it, so a new connection may carry it.
            self._drop()
            client, _known_open = self._connected()
            self._mail_from(client, to)
        self._sent_on_client += 1
        code, reply = client.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        client.putcmd("data")
        code, reply = client.getreply()
        if code != DATA_GOES_ON:
            raise smtplib.SMTPDataError(code, reply)
        # RFC 5321 4.5.2: a line that starts with a dot gets another one. The body's lines end in CRLF.
        client.send(LEADING_DOT.sub(b"..", data if data.endswith(b"\r\n") else data + b"\r\n"))

    def _finish(self) -> None:
        client = self._client
        if client is None:
            raise smtplib.SMTPServerDisconnected("the connection closed before the end of the data")
        client.send(b".\r\n")
        code, reply = client.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        self._last_used = time.monotonic()

    def _mail_from(self, client: smtplib.SMTP, to: str) -> None:
        client.ehlo_or_helo_if_needed()
        options: list[str] = []
        if not (self.sender + to).isascii():
            if not client.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError("the address needs SMTPUTF8, which the server lacks")
            options.append("SMTPUTF8")
        code, reply = client.mail(self.sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self.sender)

    def _quit(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (OSError, smtplib.SMTPException):
                self._client.close()
            self._client = None

    def _drop(self) -> None:
        # After an error the session's state is unknown: the next message gets a new connection.
        if self._client is not None:
            self._client.close()
            self._client = None

    async def forget(self, addresses: Iterable[str]) -> int:
        # Sent mail has left the service; nothing of it is kept here.
        return 0


def _failure(error: Exception) -> DeliveryFailed:
    """What an SMTP error means for the message. RFC 5321: a 5xx reply is permanent, a 4xx one
    temporary. A 5xx to RCPT is a hard bounce of the address; a 5xx to DATA refuses this message. A
    refused login, sender or greeting is the service's own configuration, and network errors pass:
    those are retried."""
    reason = f"{type(error).__name__}: {error}"[:1000]
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _text in error.recipients.values()]
        return DeliveryFailed(reason, bounced=bool(codes) and all(500 <= code < 600 for code in codes))
    if isinstance(error, smtplib.SMTPDataError):
        return DeliveryFailed(reason, permanent=500 <= error.smtp_code < 600)
    return DeliveryFailed(reason)


def mailer_for(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings)
    return FileMailer(settings.var_dir / "mail", settings.mail_from)
