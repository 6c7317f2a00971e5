"""Every route handler of the service, by feature."""

from orchestrator.health.controllers import HealthController
from orchestrator.sessions.controllers import SessionController, UserController
from orchestrator.speech.transcriptions import TranscriptionController

ROUTE_HANDLERS: list = [
    HealthController,
    SessionController,
    UserController,
    TranscriptionController,
]
