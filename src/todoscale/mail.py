"""Email over SMTP, and a mailer that only records (for tests). A leaf: standard library only.

`SMTP_URL` names the server: `smtp://user:password@host:587` upgrades to TLS with
STARTTLS whenever the server offers it (and, with a password, refuses a server that does
not), `smtps://user:password@host:465` speaks TLS from the first byte. The app keeps one
mailer in `app.extensions["mailer"]` (None without `SMTP_URL`).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 10.0


class MailError(RuntimeError):
    """The mail server refused the message or could not be reached."""


class Sender(Protocol):
    """Anything that sends an email: the SMTP mailer, or the recording one in tests."""

    sender: str

    def send(self, to: str, subject: str, body: str) -> EmailMessage:
        """Send one plain-text email and return it."""
        ...


def one_line(value: str) -> str:
    """`value` with every run of white space, line breaks included, as one space.

    A header cannot hold a line break (the email library refuses one: a todo titled
    "a\nb" crashed the reminder task), and must not: a break would start a header of the
    sender's choosing (header injection).
    """
    return " ".join(value.split())


def compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text UTF-8 email with a fresh Message-ID; the subject on one line."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = one_line(subject)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


class Mailer:
    """Sends each email on its own SMTP connection (reminders are few; no pool to go stale)."""

    def __init__(
        self,
        url: str,
        sender: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                f"SMTP URL {url!r} is not smtp://[user:password@]host[:port] or smtps://..."
            )
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password or "")
        self.sender = sender
        self.timeout = timeout
        # The system's trusted CAs, host names checked; tests pass a context of their own.
        self.context = context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.tls:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=self.context)
            smtp.ehlo()
        elif self.username:
            # No upgrade offered (or a man in the middle stripped it): never send the
            # password, nor anything else, in clear text.
            smtp.close()
            raise MailError(
                f"{self.host}:{self.port} offers no STARTTLS, so the SMTP password is not sent "
                "in clear text; use a server that offers STARTTLS, or smtps://"
            )
        return smtp

    def send(self, to: str, subject: str, body: str) -> EmailMessage:
        """Send one email; MailError when the server is unreachable or refuses it."""
        message = compose(self.sender, to, subject, body)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"could not send mail through {self.host}:{self.port}: {exc}") from exc
        return message


class RecordingMailer:
    """A mailer that keeps what it is asked to send (a fake at the edge, for tests)."""

    def __init__(self, sender: str = "todoscale@localhost") -> None:
        self.sender = sender
        self.sent: list[EmailMessage] = []

    def send(self, to: str, subject: str, body: str) -> EmailMessage:
        """Record the email instead of sending it."""
        message = compose(self.sender, to, subject, body)
        self.sent.append(message)
        return message


def from_config(config: Mapping[str, Any]) -> Mailer | None:
    """The mailer `SMTP_URL` and `MAIL_FROM` describe; None when no SMTP server is configured."""
    url = config.get("SMTP_URL")
    return Mailer(url, config["MAIL_FROM"]) if url else None
