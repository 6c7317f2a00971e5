"""WebRTC calls (``POST /v1/realtime/calls``): :mod:`.routes` negotiates, :mod:`.call` is the
:class:`~..base.Transport`, :mod:`.media` moves the audio."""
