"""Response bodies of the memory API."""

from __future__ import annotations

from datetime import datetime

import msgspec

from storage.memory import MemoryHit


class MemoryHitOut(msgspec.Struct):
    text: str
    score: float
    """Cosine similarity to the query (vectors are unit length)."""
    session_id: str
    turn_id: int
    role: str
    created_at: datetime

    @classmethod
    def of(cls, hit: MemoryHit) -> MemoryHitOut:
        return cls(text=hit.text, score=round(hit.score, 6), session_id=hit.session_id,
                   turn_id=hit.turn_id, role=hit.role, created_at=hit.created_at)


class MemorySearchOut(msgspec.Struct):
    user_id: str
    query: str
    top_k: int
    min_score: float
    hits: list[MemoryHitOut]
