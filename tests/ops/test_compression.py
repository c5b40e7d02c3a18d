"""Response compression: large responses in the encoding the client prefers, small ones plain."""

from __future__ import annotations

import gzip

import brotli
import orjson
import pytest
from backports import zstd

DECODERS = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": zstd.decompress}


@pytest.fixture
def big_listing(alice):
    """Alice's first page of 30 todos: several kilobytes of JSON."""
    for number in range(30):
        alice.add_todo(f"Todo number {number}", notes="Some notes to make it longer. " * 3)
    return "/api/v1/todos?limit=30"


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_large_json_is_compressed_as_the_client_asks(alice, big_listing, encoding):
    plain = alice.get(big_listing)
    assert "Content-Encoding" not in plain.headers
    assert len(plain.data) > 4000
    response = alice.get(big_listing, headers={"Accept-Encoding": encoding})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    assert int(response.headers["Content-Length"]) == len(response.data) < len(plain.data) / 3
    assert orjson.loads(DECODERS[encoding](response.data)) == plain.get_json()


def test_the_client_preference_order_is_zstd_then_br_then_gzip(alice, big_listing):
    response = alice.get(big_listing, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert response.headers["Content-Encoding"] == "zstd"
    response = alice.get(big_listing, headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["Content-Encoding"] == "br"
    response = alice.get(big_listing, headers={"Accept-Encoding": "deflate"})
    assert "Content-Encoding" not in response.headers


def test_small_responses_are_sent_as_they_are(client, alice):
    headers = {"Accept-Encoding": "gzip, br, zstd"}
    for response in (client.get("/healthz", headers=headers), alice.get("/api/v1/users/me")):
        assert response.status_code == 200
        assert len(response.data) < 500
        assert "Content-Encoding" not in response.headers


def test_a_compressed_todo_keeps_its_version_etag_for_if_match(alice):
    todo = alice.add_todo("Long", notes="n" * 2000)
    response = alice.get(todo["url"], headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    etag = response.headers["ETag"]
    assert etag == alice.get(todo["url"]).headers["ETag"]
    assert alice.get(todo["url"], headers={"If-None-Match": etag}).status_code == 304
    changed = alice.patch(todo["url"], json={"title": "Longer"}, headers={"If-Match": etag})
    assert changed.status_code == 200
