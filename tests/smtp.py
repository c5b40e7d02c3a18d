"""A tiny SMTP server on 127.0.0.1 for tests: it speaks enough ESMTP for smtplib and keeps mail."""

from __future__ import annotations

import base64
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast


@dataclass
class Received:
    """One message the server accepted: envelope and parsed content."""

    mail_from: str
    rcpt_to: list[str]
    message: EmailMessage


@dataclass
class SmtpState:
    """What the server accepts and what it received."""

    username: str | None = None
    password: str | None = None
    refuse_data: bool = False
    # "plain", "starttls" (offers the upgrade) or "smtps" (TLS from the first byte)
    mode: str = "plain"
    tls: ssl.SSLContext | None = None
    encrypted: list[bool] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    state: SmtpState
    secure = False

    def setup(self) -> None:
        state = cast(Any, self.server).state
        if state.mode == "smtps":
            self.request = state.tls.wrap_socket(self.request, server_side=True)
            self.secure = True
        super().setup()

    def _starttls(self, state: SmtpState) -> None:
        self._reply("220 ready to start TLS")
        assert state.tls is not None
        self.connection = state.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb")
        self.wfile = self.connection.makefile("wb", buffering=0)
        self.secure = True

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def _line(self) -> str | None:
        raw = self.rfile.readline(65536)
        return raw.decode("utf-8", "replace").rstrip("\r\n") if raw else None

    def handle(self) -> None:
        state = cast(Any, self.server).state
        self._reply("220 127.0.0.1 test ESMTP")
        envelope: dict[str, Any] = {"from": "", "to": []}
        while True:
            line = self._line()
            if line is None:  # the client hung up
                return
            verb, _, arg = line.partition(" ")
            if not self._command(state, verb.upper(), arg, envelope):
                return

    def _command(self, state: SmtpState, verb: str, arg: str, envelope: dict[str, Any]) -> bool:
        """Answer one command; False once the client said QUIT."""
        if verb == "EHLO":
            offer = "250-STARTTLS\r\n" if state.mode == "starttls" and not self.secure else ""
            self._reply("250-127.0.0.1\r\n" + offer + "250-AUTH PLAIN\r\n250 8BITMIME")
        elif verb == "STARTTLS" and state.mode == "starttls" and not self.secure:
            self._starttls(state)
        elif verb in ("HELO", "NOOP", "RSET"):
            self._reply("250 OK")
        elif verb == "AUTH":
            self._auth(state, arg)
        elif verb == "MAIL":
            envelope.update({"from": arg.partition(":")[2].strip().strip("<>"), "to": []})
            self._reply("250 OK")
        elif verb == "RCPT":
            envelope["to"].append(arg.partition(":")[2].strip().strip("<>"))
            self._reply("250 OK")
        elif verb == "DATA":
            self._data(state, envelope)
        elif verb == "QUIT":
            self._reply("221 bye")
            return False
        else:
            self._reply("502 not implemented")
        return True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.secure:  # the server closes the plain socket it accepted, not our wrapper
                self.connection.close()

    def _auth(self, state: SmtpState, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() != "PLAIN":
            self._reply("504 unsupported")
            return
        if not initial:
            self._reply("334 ")
            initial = self._line() or ""
        _, user, password = base64.b64decode(initial).decode().split("\0")
        if (user, password) == (state.username, state.password):
            state.logins.append(user)
            self._reply("235 authenticated")
        else:
            self._reply("535 bad credentials")

    def _data(self, state: SmtpState, envelope: dict[str, Any]) -> None:
        self._reply("354 go ahead")
        lines: list[bytes] = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if raw in (b".\r\n", b".\n", b""):
                break
            lines.append(raw[1:] if raw.startswith(b"..") else raw)
        if state.refuse_data:
            self._reply("554 refused by the test")
            return
        message = cast(EmailMessage, message_from_bytes(b"".join(lines), policy=policy.default))
        state.messages.append(Received(envelope["from"], list(envelope["to"]), message))
        state.encrypted.append(self.secure)
        self._reply("250 queued")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gives up (a refused certificate, a hang-up) is part of the tests."""


class SmtpServer:
    """Serve SMTP on a free port of 127.0.0.1 in a thread until `stop()`."""

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        mode: str = "plain",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.state = SmtpState(username=username, password=password, mode=mode, tls=tls)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        cast(Any, self._server).state = self.state
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def messages(self) -> list[Received]:
        return self.state.messages

    def url(self) -> str:
        """The SMTP_URL that reaches this server (with the credentials when it wants them)."""
        auth = f"{self.state.username}:{self.state.password}@" if self.state.username else ""
        return f"smtp://{auth}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
