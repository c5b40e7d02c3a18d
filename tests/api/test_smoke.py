def test_health(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_flow(alice):
    todo = alice.add_todo("hello", notes="n")
    page = alice.get("/api/v1/todos").get_json()
    assert page["items"][0]["id"] == todo["id"]
