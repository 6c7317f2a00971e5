"""Storage errors (the web layer maps them to HTTP in ``orchestrator.errors``).

::

    StorageError            500 storage_error
    ├── StorageUnavailable  503 storage_unavailable  (database or Milvus unreachable)
    ├── RecordNotFound      404 not_found
    ├── SessionEnded        409 session_ended        (a turn for an ended session)
    └── SchemaMismatch      start-up failure: migrations not applied, wrong dimension
"""


class StorageError(Exception):
    """A storage operation failed."""


class StorageUnavailable(StorageError):
    """The database (or vector store) cannot be reached."""


class RecordNotFound(StorageError):
    """No row with that id."""


class SessionEnded(StorageError):
    """The session has ended: it takes no more turns."""


class SchemaMismatch(StorageError):
    """The stored schema is not what this code expects."""
