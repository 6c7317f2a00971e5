"""Storage errors (the web layer maps them to HTTP in ``orchestrator.errors``).

::

    StorageError            500 storage_error
    ├── StorageUnavailable  503 storage_unavailable  (database or Milvus unreachable)
    ├── RecordNotFound      404 not_found
    └── SchemaMismatch      start-up failure: migrations not applied, wrong dimension
"""


class StorageError(Exception):
    """A storage operation failed."""


class StorageUnavailable(StorageError):
    """The database (or vector store) cannot be reached."""


class RecordNotFound(StorageError):
    """No row with that id."""


class SchemaMismatch(StorageError):
    """The stored schema is not what this code expects."""
