"""A Milvus Lite store removed while it ran comes back half re-created; its orphaned
collection folders are moved aside so the store opens again."""

from __future__ import annotations

from pathlib import Path

from storage.milvus_lite import set_aside_orphans


def test_only_collections_without_their_schema_are_moved_aside(tmp_path: Path) -> None:
    store = tmp_path / "milvus.db"
    kept = store / "collections" / "kept"
    orphan = store / "collections" / "voice_conversations"
    kept.mkdir(parents=True)
    (kept / "schema.json").write_text("{}")
    (orphan / "partitions").mkdir(parents=True)
    (orphan / "manifest.json").write_text("{}")

    (moved,) = set_aside_orphans(store)

    assert kept.exists() and not orphan.exists()
    assert moved.name == "voice_conversations" and (moved / "manifest.json").exists()
    assert moved.parent.parent == tmp_path and moved.parent.name.startswith("milvus.db.orphan-")
    assert set_aside_orphans(store) == []  # idempotent
