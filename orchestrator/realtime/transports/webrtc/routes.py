"""``POST /v1/realtime/calls``: OpenAI's WebRTC flow on aiortc.

The caller posts its SDP offer (``application/sdp``, or the SDK's multipart form with
``sdp`` and a ``session`` configuration) and gets ``201`` with the SDP answer and
``Location: /v1/realtime/calls/{call_id}``. Events travel on the caller's ``oai-events``
data channel, in the GA or beta shapes as on ``WS /v1/realtime``; audio on the media
tracks. ``POST /v1/realtime/calls/{call_id}/hangup`` ends a call.

Everything a refusal can be known for (a bad offer or session, an ended session, the
key's concurrent realtime sessions, a server draining) is the POST's HTTP status, before
any media flows. ICE gathers host candidates, plus what ``WEBRTC_ICE_SERVERS`` (STUN or
TURN) adds for deployments behind NAT.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from litestar import Request, Response, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery

from orchestrator.auth.access import principal_of
from orchestrator.auth.principal import Principal
from orchestrator.errors import AppError, InvalidRequest, NotFound, PayloadTooLarge
from orchestrator.realtime.protocol.openai import ClientTranslator, dialect_of
from orchestrator.realtime.protocol.openai_server import ServerTranslator
from orchestrator.realtime.protocol.session_types import new_id
from orchestrator.realtime.transports import grants
from orchestrator.realtime.transports.base import EventCodec, admit, run_admitted
from orchestrator.realtime.transports.openai import llm_version, openai_session
from orchestrator.realtime.transports.session_check import check_session
from orchestrator.realtime.transports.webrtc.call import WebRTCCall
from orchestrator.realtime.transports.webrtc.jitter import order_call_audio
from orchestrator.realtime.transports.webrtc.media_loop import MediaLoop
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings

log = logging.getLogger(__name__)
MAX_SDP_BYTES = 64 * 1024
"""An offer is a few kilobytes; anything near this is not one."""
SDP_MEDIA_TYPE = "application/sdp"


@dataclass
class CallRegistry:
    """The calls this process serves, by id (for hang-up and shutdown), and the loop
    their peer connections run on."""

    calls: dict[str, WebRTCCall] = field(default_factory=dict)
    media: MediaLoop = field(default_factory=MediaLoop)

    def owned(self, call_id: str, principal: Principal) -> WebRTCCall:
        call = self.calls.get(call_id)
        if call is None or not principal.can_act_for(call.user_id):
            raise NotFound(f"call {call_id!r} not found", param="call_id")
        return call

    async def close(self) -> None:
        await asyncio.gather(*(call.end() for call in list(self.calls.values())),
                             return_exceptions=True)
        await self.media.close()


def registry(runtime: Runtime) -> CallRegistry:
    """This process's calls; made with the first call, closed with the runtime."""
    calls = runtime.transports.get("webrtc")
    if not isinstance(calls, CallRegistry):
        calls = runtime.transports["webrtc"] = CallRegistry()
        runtime.on_close(calls.close)
    return calls


@post("/v1/realtime/calls", name="realtime:calls", status_code=201,
      summary="Start a realtime call over WebRTC (SDP offer in, SDP answer out)")
async def create_call(request: Request, model: FromQuery[str | None] = None,
                      session_id: FromQuery[str | None] = None,
                      user_id: FromQuery[str | None] = None) -> Response[str]:
    runtime: Runtime = request.app.state.runtime
    principal = principal_of(request)
    offer, session = await _read_offer(request)
    model = str(session.get("model") or model or "llm")
    dialect = dialect_of(request.headers)
    translator = ClientTranslator(dialect, model=model)
    version = llm_version(model)
    # A client secret's session first, then the one posted with the offer, checked now as
    # a minted one is, so a bad one is a 400 of the POST rather than an error event later.
    first_events = grants.first_events(principal, dialect)
    if session:
        check_session(runtime, dict(session), dialect, user_id or principal.user_id or "")
        first_events.append(json.dumps({"type": "session.update", "session": session}))
    record = await openai_session(runtime, principal, session_id, user_id)
    release = await admit(runtime, principal, record)
    calls = registry(runtime)
    call_id = new_id("rtc")
    home, settings = asyncio.get_running_loop(), runtime.settings

    async def open_call() -> tuple[WebRTCCall, str]:  # on the media loop
        pc = RTCPeerConnection(ice_configuration(settings))
        call = WebRTCCall(call_id, pc, user_id=record.user_id, session_id=record.id,
                          media_timeout_s=settings.webrtc_media_timeout_s,
                          media=calls.media, home=home)
        try:
            return call, await _negotiate(pc, call, offer, settings.webrtc_public_ip,
                                          settings.webrtc_reorder_packets)
        except BaseException:
            await pc.close()
            raise

    try:
        call, answer = await calls.media.run(open_call())
    except BaseException:
        release()
        raise

    def server_events(config: Any) -> Any:
        call.config = config  # the call's audio follows the session's formats and rates
        return ServerTranslator(dialect, model=model, config=config,
                                rate_limits=lambda: runtime.limits.realtime_limits(principal))

    codec = EventCodec(decode_event=translator, server_events=server_events,
                       llm_version=version, name="webrtc")
    calls.calls[call_id] = call

    async def serve() -> None:
        try:
            await run_admitted(call, runtime, principal, record, codec, release,
                               first_events=first_events)
        except Exception:
            log.exception("webrtc call %s failed", call_id)
        finally:
            calls.calls.pop(call_id, None)
            await call.end()

    runtime.background.spawn(serve(), name=f"webrtc-call-{call_id}")
    return Response(answer, status_code=201, media_type=SDP_MEDIA_TYPE,
                    headers={"Location": f"/v1/realtime/calls/{call_id}"})


@post("/v1/realtime/calls/{call_id:str}/hangup", name="realtime:calls-hangup",
      status_code=200, summary="End a WebRTC call")
async def hangup_call(request: Request, call_id: FromPath[str]) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    call = registry(runtime).owned(call_id, principal_of(request))
    await call.end()
    return {}


async def _read_offer(request: Request) -> tuple[str, dict[str, Any]]:
    """(SDP offer, session configuration) from an ``application/sdp`` body or the form."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == SDP_MEDIA_TYPE:
        body = await request.body()
        if len(body) > MAX_SDP_BYTES:
            raise PayloadTooLarge(f"an SDP offer of {len(body)} bytes is over the "
                                  f"{MAX_SDP_BYTES} byte limit", param="sdp")
        return _text(body, "sdp"), {}
    if media_type != "multipart/form-data":
        raise InvalidRequest("send the SDP offer as application/sdp, or as the form fields "
                             "'sdp' and 'session' (multipart/form-data)", param="sdp")
    form = await request.form()
    sdp = await _field(form.get("sdp"), "sdp")
    if sdp is None:
        raise InvalidRequest("the form has no 'sdp' field (the SDP offer)", param="sdp")
    raw_session = await _field(form.get("session"), "session")
    if raw_session is None:
        return sdp, {}
    try:
        session = json.loads(raw_session)
    except ValueError:
        raise InvalidRequest("'session' is not valid JSON", param="session") from None
    if not isinstance(session, dict):
        raise InvalidRequest("'session' must be a JSON object", param="session")
    return sdp, session


async def _field(value: Any, name: str) -> str | None:
    if value is None:
        return None
    data = await value.read() if isinstance(value, UploadFile) else value
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SDP_BYTES:
        raise PayloadTooLarge(f"'{name}' is over the {MAX_SDP_BYTES} byte limit", param=name)
    return _text(data, name)


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InvalidRequest(f"'{name}' is not UTF-8 text", param=name) from None


async def _negotiate(pc: RTCPeerConnection, call: WebRTCCall, offer: str,
                     public_ip: str | None, reorder_packets: int) -> str:
    if "m=audio" not in offer:
        raise InvalidRequest("the SDP offer has no audio media section (m=audio)",
                             param="sdp")
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    except AppError:
        raise
    except Exception as exc:  # aiortc raises ValueError and friends for a bad offer
        raise InvalidRequest(f"the SDP offer cannot be used: {str(exc)[:200]}",
                             param="sdp") from None
    if reorder_packets:
        call.order = order_call_audio(pc, reorder_packets)
    pc.addTrack(call.reply)
    try:
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except Exception as exc:
        raise InvalidRequest(f"no answer can be made to this SDP offer: {str(exc)[:200]}",
                             param="sdp") from None
    return announce(pc.localDescription.sdp, public_ip)


def announce(sdp: str, public_ip: str | None) -> str:
    """Each IPv4 host candidate once more at ``public_ip`` (same port, a little lower
    priority): a 1:1 NAT forwards it to the same socket, and a caller on the local
    network still has the private address."""
    if not public_ip:
        return sdp
    lines = []
    for line in sdp.split("\r\n"):
        lines.append(line)
        parts = line.split()
        if line.startswith("a=candidate:") and len(parts) >= 8 and parts[7] == "host" \
                and parts[2].lower() == "udp" and ":" not in parts[4]:
            parts[0] = f"{parts[0]}p"
            parts[3] = str(max(int(parts[3]) - 1, 0))
            parts[4] = public_ip
            lines.append(" ".join(parts))
    return "\r\n".join(lines)


def ice_configuration(settings: Settings) -> RTCConfiguration:
    """Host candidates always; STUN/TURN servers from ``WEBRTC_ICE_SERVERS``."""
    return RTCConfiguration(iceServers=[
        RTCIceServer(urls=url, username=settings.webrtc_turn_username,
                     credential=settings.webrtc_turn_credential)
        if url.startswith(("turn:", "turns:")) else RTCIceServer(urls=url)
        for url in settings.webrtc_ice_servers])
