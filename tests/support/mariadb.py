"""A private MariaDB server for the test session (TOOLCHAIN.md recipe).

``TEST_MARIADB_URL`` (an admin ``mysql+aiomysql://`` URL) uses an existing server
instead. Each test database is created fresh and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port never handed out before in this process: the kernel may give
    a just-closed port again, and two calls for one server (Triton's HTTP and gRPC ports)
    then collide."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class PrivateMariaDB:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.socket = base / "mysqld.sock"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not (self.datadir / "mysql").is_dir():
            subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root",
                            f"--datadir={self.datadir}",
                            "--auth-root-authentication-method=socket", "--skip-test-db"],
                           check=True, capture_output=True)
        self.process = subprocess.Popen(
            [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", "--user=root",
             f"--datadir={self.datadir}", f"--socket={self.socket}", f"--port={self.port}",
             "--bind-address=127.0.0.1", "--skip-name-resolve", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=64M",
             "--skip-log-bin"],
            stdout=open(self.base / "mariadbd.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = pymysql.connect(unix_socket=str(self.socket), user="root")
            except pymysql.err.OperationalError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.base / "mariadbd.log").read_text()[-2000:]) from None
                time.sleep(0.2)
                continue
            with conn.cursor() as cur:
                cur.execute("CREATE USER IF NOT EXISTS 'test'@'127.0.0.1' IDENTIFIED BY 'test'")
                cur.execute("GRANT ALL ON *.* TO 'test'@'127.0.0.1'")
            conn.close()
            return
        raise RuntimeError("mariadbd did not start within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def admin_url(self) -> str:
        return f"mysql+aiomysql://test:test@127.0.0.1:{self.port}"


def admin_url(tmp_base: Path) -> tuple[str, PrivateMariaDB | None]:
    url = os.environ.get("TEST_MARIADB_URL")
    if url:
        return url.rstrip("/"), None
    server = PrivateMariaDB(tmp_base)
    server.start()
    return server.admin_url, server


def create_database(admin: str, name: str) -> str:
    """Create database ``name`` and return its URL."""
    _execute(admin, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return f"{admin}/{name}?charset=utf8mb4"


def drop_database(admin: str, name: str) -> None:
    _execute(admin, f"DROP DATABASE IF EXISTS `{name}`")


def _execute(admin: str, sql: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(admin)
    conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                           password=url.password or "")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()
