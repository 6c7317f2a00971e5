"""Storage errors (the web layer maps them to HTTP in ``orchestrator.errors``).

::

    StorageError            500 storage_error
    ├── StorageUnavailable  503 storage_unavailable  (database or Milvus unreachable)
    │   └── StorageFull     507 storage_full         (the database's disk is full)
    ├── RecordNotFound      404 not_found
    ├── SessionEnded        409 session_ended        (a turn for an ended session)
    └── SchemaMismatch      start-up failure: migrations not applied, wrong dimension
"""


class StorageError(Exception):
    """A storage operation failed."""


class StorageUnavailable(StorageError):
    """The database (or vector store) cannot be reached."""


class StorageFull(StorageUnavailable):
    """The database refused a write because its disk is full; reads still work, and
    writes do again once space is freed (nothing already committed is harmed)."""


class RecordNotFound(StorageError):
    """No row with that id."""


class SessionEnded(StorageError):
    """The session has ended: it takes no more turns."""


class SchemaMismatch(StorageError):
    """The stored schema is not what this code expects."""
