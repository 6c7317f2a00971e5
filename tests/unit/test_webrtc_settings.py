"""WebRTC settings: a public address announced in the SDP answer, ICE server URLs checked
at start-up."""

from __future__ import annotations

import pytest

from orchestrator.realtime.transports.webrtc.routes import announce, ice_configuration
from orchestrator.settings import SettingsError
from tests.support.settings import base_settings

ANSWER = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n"
          "a=candidate:h1 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
          "a=candidate:h2 1 udp 2130706431 fe80::1 40001 typ host\r\n"
          "a=candidate:s1 1 udp 1694498815 1.2.3.4 40000 typ srflx raddr 10.0.0.5 rport 40000\r\n")


def test_each_ipv4_host_candidate_is_announced_once_at_the_public_address() -> None:
    out = announce(ANSWER, "203.0.113.7").split("\r\n")
    added = [line for line in out if "203.0.113.7" in line]
    assert added == ["a=candidate:h1p 1 udp 2130706430 203.0.113.7 40000 typ host"]
    assert out.index(added[0]) == out.index(
        "a=candidate:h1 1 udp 2130706431 10.0.0.5 40000 typ host") + 1
    assert announce(ANSWER, None) == ANSWER


def test_turn_servers_get_the_credentials_and_stun_servers_none() -> None:
    settings = base_settings(WEBRTC_ICE_SERVERS="stun:stun.example.org:3478,"
                             "turn:turn.example.org:3478?transport=udp",
                             WEBRTC_TURN_USERNAME="u", WEBRTC_TURN_CREDENTIAL="p")
    stun, turn = ice_configuration(settings).iceServers
    assert (stun.urls, stun.username, stun.credential) == ("stun:stun.example.org:3478",
                                                           None, None)
    assert (turn.username, turn.credential) == ("u", "p")
    assert ice_configuration(base_settings()).iceServers == []  # no STUN server by default


@pytest.mark.parametrize(("env", "variable"), [
    ({"WEBRTC_PUBLIC_IP": "my-host"}, "WEBRTC_PUBLIC_IP"),
    ({"WEBRTC_ICE_SERVERS": "stun.example.org:3478"}, "WEBRTC_ICE_SERVERS"),
    ({"WEBRTC_MEDIA_TIMEOUT_S": "0"}, "WEBRTC_MEDIA_TIMEOUT_S"),
])
def test_bad_webrtc_settings_fail_at_start_up_naming_the_variable(env, variable) -> None:
    with pytest.raises(SettingsError) as refused:
        base_settings(**env)
    assert refused.value.variable == variable
