"""Phone calls through Twilio Media Streams: ``POST /v1/twilio/voice`` answers Twilio's
incoming-call webhook with TwiML that connects the call to ``WS /v1/twilio/media-stream``,
where :class:`~.call.TwilioCall` serves one realtime session per call."""
