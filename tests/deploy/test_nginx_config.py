"""deploy/nginx: the drop-in files are the template's renderings, and nginx accepts them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.deploy.helpers import require
from todoscale.deploy import nginx

# The drop-in files for people deploying by hand: the package's template, rendered.
EXAMPLE = PROJECT_ROOT / "deploy" / "nginx" / "todoscale.conf"
COMPOSE_EXAMPLE = PROJECT_ROOT / "deploy" / "nginx" / "compose.conf"


@pytest.mark.parametrize(
    ("path", "site"),
    [(EXAMPLE, nginx.Site()), (COMPOSE_EXAMPLE, nginx.COMPOSE_SITE)],
    ids=["todoscale.conf", "compose.conf"],
)
def test_the_drop_in_files_are_the_template_rendered(path, site):
    assert path.read_text() == nginx.render(site), (
        f"{path.name} is stale: regenerate it with todoscale.deploy.nginx.render"
    )


def test_the_site_has_every_piece_a_deployment_needs():
    text = EXAMPLE.read_text()

    for needle in [
        "least_conn;",
        "proxy_next_upstream error timeout;",
        "ip_hash;",
        "proxy_set_header Upgrade $http_upgrade;",
        "limit_req zone=todoscale_per_address",
        "gzip on;",
        "proxy_buffering on;",
        "client_max_body_size 10m;",
        'add_header X-Frame-Options "DENY" always;',
        "Strict-Transport-Security",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-ID $todoscale_request_id;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "expires max;",
    ]:
        assert needle in text, needle
    # The idempotent-only retry is nginx's default; `non_idempotent` would resend POSTs.
    assert "non_idempotent" not in text


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with openssl."""
    openssl = require("openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_nginx_accepts_the_rendered_configuration(tls, tmp_path):
    binary = require("nginx")
    cert, key = make_certificate(tmp_path) if tls else (Path("unused"), Path("unused"))
    site = nginx.Site(
        http_listen="127.0.0.1:1",
        https_listen="127.0.0.1:2",
        tls=tls,
        ssl_certificate=str(cert),
        ssl_certificate_key=str(key),
        static_dir=str(nginx.STATIC_DIR),
        access_log=str(tmp_path / "access.log"),
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "tmp").mkdir()
    (tmp_path / "site.conf").write_text(nginx.render(site))
    (tmp_path / "nginx.conf").write_text(nginx.main_config(tmp_path / "site.conf", tmp_path))

    done = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr
    assert "[warn]" not in done.stderr, done.stderr
