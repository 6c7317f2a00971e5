"""Persistence: SQL (MariaDB / SQLite), Milvus memory, processed audio files."""
