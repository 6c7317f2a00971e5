"""Start-up: connect to every dependency the settings name and build the feature services
into a :class:`~orchestrator.runtime.Runtime` (the composition root, beside ``app``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from orchestrator.auth.authenticator import Authenticator
from orchestrator.auth.limits import RateLimiter
from orchestrator.chat.prompt import build_messages
from orchestrator.chat.service import SamplingParams, build_chat_service, estimate_tokens
from orchestrator.health.checks import HealthCheck
from orchestrator.inference.client import TritonClient
from orchestrator.inference.health import triton_health_checks
from orchestrator.memory.embedder import TritonEmbedder
from orchestrator.memory.wiring import build_memory
from orchestrator.models.wiring import start_model_admin
from orchestrator.realtime.live import LiveSessions
from orchestrator.realtime.wiring import ChatPrompt, bounded_decoder
from orchestrator.redaction import remember_secrets
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.shared.revocations import follow_revocations
from orchestrator.shared.wiring import SharedState
from orchestrator.speech.audio_input import decode_audio
from orchestrator.speech.audio_output import encode_audio
from orchestrator.speech.catalogue import ModelCatalogue
from orchestrator.speech.stt import SpeechToText
from orchestrator.speech.tts import TextToSpeech
from storage.api_keys import KeyStore
from storage.client_secrets import ClientSecretStore
from storage.conversations import ConversationStore
from storage.database import Database
from storage.migrate import ensure_current, upgrade_async

if TYPE_CHECKING:
    from orchestrator.inference.supervisor import TritonSupervisor

log = logging.getLogger(__name__)


async def start_runtime(settings: Settings,
                        triton_supervisor: TritonSupervisor | None = None) -> Runtime:
    """Connect to every dependency the settings name."""
    remember_secrets(settings.admin_api_key, settings.db_password)
    if settings.auto_migrate:
        await upgrade_async(settings.sql_url)
    database = Database(settings.sql_url, settings.db_pool_size)
    keys = KeyStore(database)
    shared = SharedState(settings.redis_url, settings.redis_lease_ttl_s)
    runtime = Runtime(settings=settings, database=database,
                      conversations=ConversationStore(database), keys=keys,
                      client_secrets=ClientSecretStore(database),
                      auth=Authenticator(keys, admin_key=settings.admin_api_key,
                                         cache_s=settings.auth_key_cache_s),
                      limits=RateLimiter(settings, shared.limits),
                      live_sessions=LiveSessions(shared.leases))
    runtime.on_close(database.close)
    if shared.redis is not None:  # unreachable now is no error: it serves on its own
        follow_revocations(shared.redis, runtime.auth)
        await shared.redis.start()
        runtime.on_close(shared.redis.close)  # late: releases of draining sockets use it
        runtime.health_checks.append(shared.health_check())
    runtime.on_close(runtime.auth.close)
    runtime.on_close(runtime.background.close)  # before the stores it writes to close
    if settings.admin_api_key and len(settings.admin_api_key) < 24:
        log.warning("ADMIN_API_KEY is only %d characters: use a long random value (or "
                    "`voicechat keys create --admin`)", len(settings.admin_api_key))
    if not settings.auth_required:
        log.warning("AUTH_MODE=off: open access without API keys on %s (loopback only); "
                    "set AUTH_MODE=required and make keys with `voicechat keys create`",
                    settings.host)
    try:
        await ensure_current(settings.sql_url)
    except Exception:
        await runtime.close()
        raise

    async def sql_probe() -> str | None:
        await database.ping()
        return database.dialect

    runtime.health_checks.append(HealthCheck("sql", required=True, probe=sql_probe))

    # Uploads (voice-chat) decode in process with PyAV, within the configured limits.
    runtime.services.audio_decoder = bounded_decoder(
        decode_audio, max_bytes=settings.max_request_bytes,
        max_seconds=settings.max_audio_seconds)
    runtime.services.audio_encoder = encode_audio  # replies: mp3, opus, aac, flac, wav, pcm

    runtime.services.catalogue = ModelCatalogue(
        settings.model_repository,
        lambda model: runtime.triton.default_versions.get(model, "") if runtime.triton else "",
        default_voice=settings.default_voice)

    if settings.triton_url:
        runtime.triton = TritonClient(settings.triton_url, settings.triton_timeout_s)
        runtime.on_close(runtime.triton.close)
        runtime.health_checks.extend(triton_health_checks(runtime.triton, settings,
                                                          triton_supervisor))
        if settings.stt_enabled:
            runtime.services.stt = SpeechToText(runtime.triton,
                                                repository=settings.model_repository,
                                                chunk_s=settings.stt_chunk_seconds,
                                                long_form_s=settings.stt_long_form_seconds)
        if settings.tts_enabled:
            runtime.services.tts = TextToSpeech(
                runtime.triton, default_voice=settings.default_voice,
                max_chars=settings.max_tts_chars,
                choose_voice=runtime.services.catalogue.effective_voice)

        runtime.services.embedder = TritonEmbedder(runtime.triton)

        # Pins requests to the promoted versions and follows promotions of other processes.
        runtime.services.models, stop_pins = start_model_admin(settings, runtime.triton)
        runtime.on_close(stop_pins)
        if settings.memory_enabled:
            memory = build_memory(settings, runtime.triton)  # Milvus + the embedder model
            try:
                await memory.start()
            except Exception:
                await runtime.close()
                raise
            runtime.services.memory = memory
            runtime.on_close(memory.close)
            runtime.health_checks.append(HealthCheck("memory", required=False,
                                                     probe=memory.health))

    runtime.services.llm = chat = build_chat_service(settings, runtime.triton)
    # Realtime and voice-chat build prompts the way /v1/chat/completions sessions do:
    # cut to LLM_CONTEXT_TOKENS by the served model's own tokenizer.
    runtime.services.prompt = ChatPrompt(build_messages, SamplingParams,
                                         chat.count_tokens if chat else estimate_tokens,
                                         settings.llm_context_tokens)
    return runtime
