"""mail: SMTP URLs, sending through a real (local) SMTP server, and the recording mailer."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from tests.smtp import SmtpServer
from todoscale import mail


@pytest.fixture
def tls(tls_certificate) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server's TLS context (a self-signed certificate) and a client's that trusts it."""
    cert, key = tls_certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    return server_side, ssl.create_default_context(cafile=cert)


@pytest.fixture
def smtp(tls) -> Iterator[SmtpServer]:
    """A server that wants a login and offers STARTTLS."""
    server = SmtpServer(username="mailer", password="p@ss:word", mode="starttls", tls=tls[0])
    try:
        yield server
    finally:
        server.stop()


def test_a_mailer_sends_through_the_server_with_login(smtp, tls):
    url = f"smtp://mailer:p%40ss%3Aword@127.0.0.1:{smtp.port}"
    mailer = mail.Mailer(url, "todoscale@example.com", context=tls[1])
    sent = mailer.send("mia@example.com", "Reminder: Pay rent", "“Pay rent” is due soon.")
    assert smtp.state.logins == ["mailer"]
    assert smtp.state.encrypted == [True]
    [received] = smtp.messages
    assert received.mail_from == "todoscale@example.com"
    assert received.rcpt_to == ["mia@example.com"]
    assert received.message["Subject"] == "Reminder: Pay rent"
    assert received.message["Message-ID"] == sent["Message-ID"]
    assert received.message.get_content().strip() == "“Pay rent” is due soon."


def test_a_subject_with_line_breaks_goes_out_on_one_line_and_adds_no_header(smtp, tls):
    mailer = mail.Mailer(smtp.url(), "todoscale@example.com", timeout=5, context=tls[1])
    mailer.send("mia@example.com", "Reminder: Pay\nrent\r\nBcc: all@example.com", "body")
    [received] = smtp.messages
    assert received.message["Subject"] == "Reminder: Pay rent Bcc: all@example.com"
    assert received.message["Bcc"] is None
    assert received.rcpt_to == ["mia@example.com"]


def test_wrong_credentials_and_refusals_raise_mail_errors(smtp, tls):
    wrong = mail.Mailer(
        f"smtp://mailer:nope@127.0.0.1:{smtp.port}", "a@example.com", context=tls[1]
    )
    with pytest.raises(mail.MailError, match=r"127\.0\.0\.1"):
        wrong.send("mia@example.com", "s", "b")
    smtp.state.refuse_data = True
    with pytest.raises(mail.MailError, match="refused by the test"):
        mail.Mailer(smtp.url(), "a@example.com", context=tls[1]).send("mia@example.com", "s", "b")
    assert smtp.messages == []


def test_credentials_never_go_out_in_clear_text_when_starttls_is_not_offered():
    # A server (or a man in the middle who strips STARTTLS from its greeting) without TLS:
    # the password is not sent, and nothing else either.
    server = SmtpServer(username="mailer", password="secret", mode="plain")
    try:
        mailer = mail.Mailer(f"smtp://mailer:secret@127.0.0.1:{server.port}", "a@example.com")
        with pytest.raises(mail.MailError, match="STARTTLS"):
            mailer.send("mia@example.com", "s", "b")
        assert server.state.logins == [] and server.messages == []
    finally:
        server.stop()


def test_without_credentials_a_server_without_tls_is_used_as_it_is():
    server = SmtpServer(mode="plain")
    try:
        mail.Mailer(server.url(), "a@example.com").send("mia@example.com", "s", "b")
        assert server.state.encrypted == [False]
    finally:
        server.stop()


def test_an_unreachable_server_is_a_mail_error_not_a_hang():
    server = SmtpServer()
    port = server.port
    server.stop()
    mailer = mail.Mailer(f"smtp://127.0.0.1:{port}", "a@example.com", timeout=2)
    with pytest.raises(mail.MailError):
        mailer.send("mia@example.com", "s", "b")


def test_urls_choose_tls_port_and_credentials():
    plain = mail.Mailer("smtp://smtp.example.com", "a@example.com")
    assert (plain.host, plain.port, plain.tls, plain.username) == (
        "smtp.example.com",
        25,
        False,
        None,
    )
    tls = mail.Mailer("smtps://u%40x:secret@mail.example.com", "a@example.com")
    assert (tls.port, tls.tls, tls.username, tls.password) == (465, True, "u@x", "secret")
    assert mail.Mailer("smtp://h:587", "a@example.com").port == 587
    with pytest.raises(ValueError, match="smtp://"):
        mail.Mailer("http://example.com", "a@example.com")


def test_the_app_has_a_mailer_only_with_an_smtp_url():
    assert mail.from_config({"SMTP_URL": None, "MAIL_FROM": "a@example.com"}) is None
    mailer = mail.from_config({"SMTP_URL": "smtp://h:25", "MAIL_FROM": "a@example.com"})
    assert isinstance(mailer, mail.Mailer)
    assert mailer.sender == "a@example.com"


def test_the_recording_mailer_keeps_what_it_is_given():
    mailer = mail.RecordingMailer("todoscale@example.com")
    mailer.send("mia@example.com", "Hello", "Body")
    [message] = mailer.sent
    assert (message["From"], message["To"], message["Subject"]) == (
        "todoscale@example.com",
        "mia@example.com",
        "Hello",
    )


@pytest.mark.parametrize(("mode", "scheme"), [("starttls", "smtp"), ("smtps", "smtps")])
def test_tls_by_starttls_or_from_the_first_byte(tls, mode, scheme):
    server_side, trusting = tls
    server = SmtpServer("u", "p", mode=mode, tls=server_side)
    try:
        url = f"{scheme}://u:p@127.0.0.1:{server.port}"
        # An untrusted certificate is refused: TLS is checked, not only offered.
        with pytest.raises(mail.MailError):
            mail.Mailer(url, "a@example.com").send("mia@example.com", "s", "b")
        mail.Mailer(url, "a@example.com", context=trusting).send("mia@example.com", "s", "b")
        assert server.state.encrypted == [True]
        assert server.state.logins == ["u"]
    finally:
        server.stop()
