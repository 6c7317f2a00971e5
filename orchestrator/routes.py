"""Every route handler of the service, by feature."""

from orchestrator.auth.controllers import KeyAdminController
from orchestrator.chat.controllers import ChatController, ModelsController
from orchestrator.health.controllers import HealthController, ProbeController
from orchestrator.memory.controllers import MemoryController
from orchestrator.memory.embeddings import EmbeddingsController
from orchestrator.models.controllers import ModelAdminController
from orchestrator.realtime.client_secret_routes import create_client_secret
from orchestrator.realtime.controllers import ROUTES as REALTIME_ROUTES
from orchestrator.sessions.controllers import SessionController, UserController
from orchestrator.speech.synthesis import SpeechController, list_voices
from orchestrator.speech.transcriptions import TranscriptionController

ROUTE_HANDLERS: list = [
    HealthController,
    ProbeController,
    SessionController,
    UserController,
    MemoryController,
    ChatController,
    ModelsController,
    EmbeddingsController,
    TranscriptionController,
    SpeechController,
    list_voices,
    *REALTIME_ROUTES,
    ModelAdminController,
    KeyAdminController,
    create_client_secret,
]
