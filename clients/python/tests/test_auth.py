"""Token authentication against a server with [[auth.tokens]]."""

import hashlib

import pytest

import riverlog
from conftest import Server

TOKEN = "s3cret-ingest-token"


@pytest.fixture
def auth_server(tmp_path):
    config = tmp_path / "riverlog.toml"
    config.write_text(
        "[[auth.tokens]]\n"
        'name = "ingest"\n'
        f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n'
        'publish = ["orders:*"]\n'
        'subscribe = ["orders:*"]\n'
        "admin = false\n"
    )
    srv = Server(tmp_path, config=config).start()
    yield srv
    srv.stop()


def test_token_auth(auth_server):
    event = {"type": "t", "source": "/s", "data": 1}
    with riverlog.Client(auth_server.target, timeout=10) as anonymous:
        with pytest.raises(riverlog.UnauthenticatedError) as exc:
            anonymous.publish("orders:1", event)
        assert exc.value.reason == "UNAUTHENTICATED"
    with riverlog.Client(auth_server.target, token="wrong", timeout=10) as wrong:
        with pytest.raises(riverlog.UnauthenticatedError):
            wrong.publish("orders:1", event)
    with riverlog.Client(auth_server.target, token=TOKEN, timeout=10) as client:
        (p,) = client.publish("orders:1", event)
        assert p.sequence == 1
        assert [e.json() for e in client.read("orders:1")] == [1]
        with client.subscribe("orders:*") as sub:
            assert next(sub).id == p.id
        with pytest.raises(riverlog.PermissionDeniedError) as exc:
            client.publish("payments:1", event)
        assert exc.value.reason == "PERMISSION_DENIED"
