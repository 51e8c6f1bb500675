"""TLS: both clients reach a server that serves gRPC over TLS, given the
certificate authority through `credentials`."""

import shutil
import subprocess

import grpc
import pytest

import riverlog
import riverlog.aio
from conftest import Server

_REFUSED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_server(tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command (apt-get install openssl)")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=riverlog test CA", cwd=tmp_path)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
             cwd=tmp_path)
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
             cwd=tmp_path)
    config = tmp_path / "riverlog.toml"
    config.write_text(
        f'tls_cert = "{tmp_path / "server.pem"}"\ntls_key = "{tmp_path / "server.key"}"\n'
    )
    srv = Server(tmp_path, config=config).start()
    srv.ca = (tmp_path / "ca.pem").read_bytes()
    yield srv
    srv.stop()


def test_the_blocking_client_over_tls(tls_server):
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_server.ca)
    with riverlog.Client(tls_server.target, credentials=credentials, timeout=10) as client:
        (p,) = client.publish("tls:1", {"type": "t", "source": "/s", "data": 1})
        assert [e.id for e in client.read("tls:1")] == [p.id]
    # Plaintext to a TLS server fails (retried as UNAVAILABLE until the
    # deadline), it does not hang.
    with riverlog.Client(tls_server.target, timeout=1) as plaintext:
        with pytest.raises(riverlog.RiverlogError) as exc:
            plaintext.get_stream("tls:1")
        assert exc.value.code() in _REFUSED


async def test_the_async_client_over_tls(tls_server):
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_server.ca)
    async with riverlog.aio.Client(tls_server.target, credentials=credentials, timeout=10) as client:
        (p,) = await client.publish("tls:2", {"type": "t", "source": "/s", "data": 1})
        async with client.subscribe("tls:2") as subscription:
            assert (await subscription.__anext__()).id == p.id
    # A client that does not trust the server's certificate is refused.
    async with riverlog.aio.Client(
        tls_server.target, credentials=grpc.ssl_channel_credentials(), timeout=1
    ) as untrusting:
        with pytest.raises(riverlog.RiverlogError) as exc:
            await untrusting.get_stream("tls:2")
        assert exc.value.code() in _REFUSED
