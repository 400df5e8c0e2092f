"""The one way the service sends mail: `mailer_for(settings)`.

Two backends, chosen by PARTNERMATCH_MAIL_BACKEND: `file` (development) writes each message as an
.eml file under var_dir/mail and logs it; `smtp` hands it to an SMTP server with the standard
library, in a worker thread so the event loop never waits on the network."""

import asyncio
import logging
import re
import smtplib
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Protocol

from partnermatch.errors import MailNotSent
from partnermatch.settings import Settings

logger = logging.getLogger("partnermatch.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None:
        """Deliver, or raise MailNotSent (logged) when it cannot."""

    async def forget(self, addresses: Iterable[str]) -> int:
        """Remove the copies of messages to these addresses that the backend keeps (GDPR erasure);
        how many were removed."""


def compose(sender: str, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="partnermatch.invalid")
    message.set_content(mail.body)
    return message


def _folded(addresses: Iterable[str]) -> set[str]:
    return {a.strip().lower() for a in addresses if a and a.strip()}


class FileMailer:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, mail: Mail) -> None:
        message = compose(self.sender, mail)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Sortable by time, unique, and safe as a file name whatever the address holds.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", mail.to)[:80]
        path = self.directory / f"{stamp}-{recipient}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(message.as_bytes())
        logger.info("mail to %s (%s) written to %s", mail.to, mail.subject, path)

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
    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.user = settings.smtp_user
        self.password = settings.smtp_password.get_secret_value()
        self.starttls = settings.smtp_starttls
        self.ssl = settings.smtp_ssl
        self.timeout = settings.smtp_timeout_seconds

    async def send(self, mail: Mail) -> None:
        message = compose(self.sender, mail)
        try:
            await asyncio.to_thread(self._deliver, message)
        except (OSError, smtplib.SMTPException) as error:
            # The address is logged, the body (which may hold a one-time link) is not.
            logger.error(
                "mail to %s (%s) not sent through %s:%d: %r",
                mail.to,
                mail.subject,
                self.host,
                self.port,
                error,
            )
            raise MailNotSent("the email could not be sent; please try again later") from error
        logger.info("mail to %s (%s) sent through %s:%d", mail.to, mail.subject, self.host, self.port)

    def _deliver(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.ssl:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.starttls and not self.ssl:
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password)
            client.send_message(message)

    async def forget(self, addresses: Iterable[str]) -> int:
        # Sent mail has left the service; nothing of it is kept here.
        return 0


def mailer_for(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings)
    return FileMailer(settings.var_dir / "mail", settings.mail_from)
