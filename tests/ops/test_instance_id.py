"""The X-Instance-ID response header: which instance answered, behind a load balancer."""

from __future__ import annotations

import os
import socket


def test_every_response_names_the_instance_by_host_and_pid(client):
    response = client.get("/healthz")

    assert response.headers["X-Instance-ID"] == f"{socket.gethostname()}:{os.getpid()}"
    assert client.get("/api/v1/todos").headers["X-Instance-ID"] == response.headers["X-Instance-ID"]


def test_the_instance_id_is_configurable(make_app):
    app = make_app(INSTANCE_ID="app7")

    assert app.test_client().get("/healthz").headers["X-Instance-ID"] == "app7"


def test_production_sends_no_host_name_or_pid_unless_told_an_id(make_app):
    production = {"ENV_NAME": "production", "SECRET_KEY": "x" * 32, "TESTING": True}

    silent = make_app(**production).test_client().get("/healthz")
    named = make_app(**production, INSTANCE_ID="app1").test_client().get("/healthz")

    assert "X-Instance-ID" not in silent.headers
    assert socket.gethostname() not in str(silent.headers)
    assert named.headers["X-Instance-ID"] == "app1"
