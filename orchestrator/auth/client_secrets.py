"""Client secrets (``ek_``) at the door: the only routes one opens, and the principal a
redeemed one acts as.

A client secret is handed to a browser or app that must not hold a real API key, so it
opens a realtime connection and nothing else: every REST or admin route refuses it
(before it is spent). It is spent by the connection that presents it, whatever that
connection does afterwards.
"""

from __future__ import annotations

from typing import Any

from orchestrator.auth.principal import BOOTSTRAP_KEY_ID, ClientSecretGrant, Principal
from orchestrator.errors import Unauthorized
from storage.api_keys import KeyStore
from storage.client_secrets import ClientSecretRecord, ClientSecretStore, Refusal
from storage.errors import RecordNotFound

MAX_SECRET_CHARS = 256
REALTIME_CALLS = "/v1/realtime/calls"
"""``POST``: a WebRTC call's SDP offer (the WebRTC transport)."""
TWILIO_STREAM = "/v1/twilio/media-stream"
"""``WS``: a phone call's media stream, whose ``start`` carries the secret the incoming-call
webhook minted (the Twilio transport)."""
ONLY_REALTIME = ("client secrets (ek_...) only open realtime connections (WS /v1/realtime, "
                 f"WS /ws/..., WS {TWILIO_STREAM}, POST {REALTIME_CALLS}); use an API key "
                 "for this route")
REFUSALS = {
    Refusal.UNKNOWN: "unknown client secret",
    Refusal.USED: "this client secret has been used already: each one opens a single "
                  "connection; mint another (POST /v1/realtime/client_secrets)",
    Refusal.EXPIRED: "this client secret has expired; mint another "
                     "(POST /v1/realtime/client_secrets)",
}


def opens_realtime(scope: dict[str, Any]) -> bool:
    """Whether this request opens a realtime connection (where a client secret is good)."""
    path = scope.get("path", "")
    if scope["type"] == "websocket":
        return path in ("/v1/realtime", TWILIO_STREAM) or path.startswith("/ws/")
    return scope["type"] == "http" and scope.get("method") == "POST" and path == REALTIME_CALLS


async def redeem(scope: dict[str, Any], secret: str, store: ClientSecretStore,
                 keys: KeyStore) -> Principal:
    """The principal of a client secret, which is spent by this call; Unauthorized on a
    route it does not open, for an unknown, used or expired one, or one whose minting key
    has been revoked since (revoking a key withdraws what it handed out)."""
    if not opens_realtime(scope):
        raise Unauthorized(ONLY_REALTIME)
    if len(secret) > MAX_SECRET_CHARS or not secret.isascii():
        raise Unauthorized(REFUSALS[Refusal.UNKNOWN])
    outcome = await store.redeem(secret)
    if isinstance(outcome, Refusal):
        raise Unauthorized(REFUSALS[outcome])
    if outcome.minted_by not in (None, BOOTSTRAP_KEY_ID):
        try:
            active = (await keys.get(outcome.minted_by)).active
        except RecordNotFound:
            active = False
        if not active:
            raise Unauthorized(f"the API key that minted this client secret "
                               f"({outcome.minted_by}) has been revoked")
    return principal_of(outcome)


def principal_of(record: ClientSecretRecord) -> Principal:
    """The secret's user, never an admin. Its limits are those of the key that minted it
    (so minting many secrets buys no more connections); a secret minted under open access
    counts on its own."""
    return Principal(key_id=record.minted_by or record.id, user_id=record.user_id,
                     admin=False, client_secret=ClientSecretGrant(
                         id=record.id, model=record.model, session=record.session))
