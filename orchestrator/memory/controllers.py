"""``GET /api/users/{user_id}/memory/search?q=...&top_k=&min_score=``: a user's past turns
most relevant to ``q`` (only that user's), as retrieved into the LLM prompt."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from orchestrator.auth.access import PrincipalDep, check_user
from orchestrator.dependencies import RuntimeDep
from orchestrator.errors import InvalidRequest, MemoryUnavailable
from orchestrator.memory.schemas import MemoryHitOut, MemorySearchOut
from orchestrator.validation import UserIdPath, is_user_id


class MemoryController(Controller):
    path = "/api/users"
    tags = ["memory"]

    @get("/{user_id:str}/memory/search", name="memory:search",
         summary="Search one user's conversation memory")
    async def search(
        self, runtime: RuntimeDep, user_id: UserIdPath, principal: PrincipalDep,
        q: Annotated[str, Parameter(min_length=1, max_length=2000, pattern=r"\S",
                                    description="what to look for (not only spaces)")],
        top_k: Annotated[int | None, Parameter(ge=1, le=100)] = None,
        min_score: Annotated[float | None, Parameter(ge=-1.0, le=1.0)] = None,
    ) -> MemorySearchOut:
        if not is_user_id(user_id):
            raise InvalidRequest("user_id must be 1-64 characters: letters, digits, . _ @ : -")
        check_user(principal, user_id)
        if not q.strip():
            raise InvalidRequest("q (the text to search for) must not be empty")
        service = runtime.services.memory
        if service is None:
            raise MemoryUnavailable("conversation memory is off on this server "
                                    "(MEMORY_ENABLED=false or no inference server)")
        settings = runtime.settings
        k = top_k or settings.memory_top_k or 5
        threshold = settings.memory_min_score if min_score is None else min_score
        hits = await service.search(user_id, q, top_k=k, min_score=threshold)
        return MemorySearchOut(user_id=user_id, query=q, top_k=k, min_score=threshold,
                               hits=[MemoryHitOut.of(h) for h in hits])
