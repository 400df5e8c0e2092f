"""The one way the service sends mail. The development backend writes .eml files; SMTP comes later."""

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from partnermatch.settings import Settings

logger = logging.getLogger("partnermatch.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


class FileMailer:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain="partnermatch.invalid")
        message.set_content(mail.body)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Sortable by time, unique, and safe as a file name whatever the address holds.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", mail.to)[:80]
        path = self.directory / f"{stamp}-{recipient}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(message.as_bytes())
        logger.info("mail to %s (%s) written to %s", mail.to, mail.subject, path)


def mailer_for(settings: Settings) -> Mailer:
    return FileMailer(settings.var_dir / "mail", settings.mail_from)
