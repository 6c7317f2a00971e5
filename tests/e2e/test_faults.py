"""Faults a production service meets, with real processes: the database lost between the
start-up check and the start, and (below) faults during live realtime conversations."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.e2e.test_serve import serve
from tests.support import mariadb
from tests.support.flaky_proxy import CuttingProxy


@pytest.mark.mariadb
def test_a_database_lost_after_the_start_up_check_is_one_line(mariadb_admin,
                                                              tmp_path: Path) -> None:
    """The check's connection gets through, every later one is cut: the start (migrations)
    fails, and the user reads one line naming the database, not Litestar's traceback."""
    admin, _ = mariadb_admin
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(mariadb.create_database(admin, name))
    try:
        with CuttingProxy(url.port or 3306, forward=1) as proxy:
            lost = url.set(port=proxy.port).render_as_string(hide_password=False)
            proc, _ = serve(tmp_path, DATABASE_URL=lost, LOG_FORMAT="text")
            output = proc.communicate(timeout=120)[0].decode()
        assert proxy.accepted >= 2, output  # the check got through; the start did not
        assert proc.returncode == 2, output
        assert "Traceback" not in output, output
        last = output.strip().splitlines()[-1]
        assert last.startswith("voicechat: database mysql+aiomysql://test:***@"), output
        assert "unreachable" in last and "DATABASE_URL" in last, output
    finally:
        mariadb.drop_database(admin, name)
