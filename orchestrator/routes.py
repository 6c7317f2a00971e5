"""Every route handler of the service, by feature."""

from orchestrator.chat.controllers import ChatController, ModelsController
from orchestrator.health.controllers import HealthController
from orchestrator.sessions.controllers import SessionController, UserController

ROUTE_HANDLERS: list = [
    HealthController,
    SessionController,
    UserController,
    ChatController,
    ModelsController,
]
