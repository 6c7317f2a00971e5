"""Model administration: list, load, validate, promote and roll back repository versions.

The service (:class:`orchestrator.models.service.ModelAdmin`) drives Triton's explicit
model control with ``specific`` version policies; the admin REST endpoints
(``/admin/models``) and ``voicechat models`` call it. Which version serves requests
that name none is kept in ``<repository>/<model>/serving.json`` (see
:mod:`orchestrator.models.state`), so it survives restarts and is shared by every
process that sees the repository.
"""
