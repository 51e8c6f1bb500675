"""Fixtures: real `riverlog serve` processes on free ports and temporary
SQLite databases; `async def` tests run each in a fresh event loop."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional

import pytest

import riverlog

_READY = re.compile(r"grpc=127\.0\.0\.1:(\d+)")


def server_binary() -> str:
    binary = os.environ.get("RIVERLOG_BIN", "/tmp/riverlog-bin/riverlog")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"riverlog server binary not found at {binary}: set RIVERLOG_BIN")
    return binary


class Server:
    """One `riverlog serve` process; restartable on the same port and database."""

    def __init__(self, data_dir: Path, config: Optional[Path] = None) -> None:
        self.data_dir = data_dir
        self.config = config
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self.log: List[str] = []

    @property
    def target(self) -> str:
        assert self.port is not None
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Server":
        listen = f"127.0.0.1:{self.port or 0}"
        args = [
            server_binary(), "serve",
            "--listen", listen,
            "--http-listen", "127.0.0.1:0",
            "--database-url", f"sqlite://{self.data_dir / 'r.db'}",
        ]
        if self.config is not None:
            args += ["--config", str(self.config)]
        # The server reads RIVERLOG_* variables: keep the caller's out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERLOG_")}
        env.setdefault("NO_COLOR", "1")
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, env=env, text=True, errors="replace",
            )
            ready = threading.Event()
            port: List[int] = []

            def drain(stream=proc.stderr, ready=ready, port=port) -> None:
                # Keeps reading so the server never blocks on a full pipe.
                for line in stream:
                    self.log.append(line.rstrip("\n"))
                    m = _READY.search(line)
                    if m and not ready.is_set():
                        port.append(int(m.group(1)))
                        ready.set()
                ready.set()

            threading.Thread(target=drain, daemon=True).start()
            ready.wait(max(0.0, deadline - time.monotonic()))
            if port:
                self.proc, self.port = proc, port[0]
                return self
            proc.kill()
            proc.wait()
            # Rebinding a just-released port can fail briefly: retry.
            if time.monotonic() >= deadline:
                raise RuntimeError("riverlog did not start:\n" + "\n".join(self.log[-30:]))
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A server shared by the tests that use unique stream names."""
    srv = Server(tmp_path_factory.mktemp("riverlog")).start()
    yield srv
    srv.stop()


@pytest.fixture
def own_server(tmp_path):
    """A server of the test's own (for restarts)."""
    srv = Server(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with riverlog.Client(server.target, timeout=10) as c:
        yield c


@pytest.fixture
def stream():
    """A stream name no other test uses."""
    return f"test:{uuid.uuid4().hex[:12]}"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Runs an `async def` test in an event loop of its own (no plugin
    needed): asyncio.run closes the loop, so a test that leaves a task or a
    call behind does not leak it into the next."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    argnames = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in argnames}))
    return True
