"""Which database errors mean a full disk (507 storage_full) and which do not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from storage.database import is_disk_full


class _PgError(Exception):
    sqlstate = "53100"


@pytest.mark.parametrize("orig", [
    Exception("database or disk is full"),                      # SQLite SQLITE_FULL
    Exception(1021, "Disk full (/var/lib/mysql/t); waiting"),   # MariaDB ER_DISK_FULL
    Exception(1114, "The table 'turns' is full"),               # ER_RECORD_FILE_FULL
    _PgError("could not extend file: No space left on device"),
])
def test_disk_full_errors_of_each_backend(orig: Exception) -> None:
    assert is_disk_full(OperationalError("INSERT", {}, orig))


@pytest.mark.parametrize("orig", [
    Exception(2003, "Can't connect to MySQL server on '127.0.0.1'"),
    Exception("database is locked"),
    Exception("unable to open database file"),
])
def test_other_errors_are_not_a_full_disk(orig: Exception) -> None:
    assert not is_disk_full(OperationalError("INSERT", {}, orig))
