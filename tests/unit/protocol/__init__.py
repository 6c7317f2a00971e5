"""The public protocols with the models scripted.

What these tests assert depends on what a model said: a tool call, a transcript of known
words, a reply slow enough to interrupt or to outlast a drain, a sentence of known length
to truncate. So the model ports are the scripted ones of ``tests/support/fake_voice.py``;
everything else a client meets is real: the app on uvicorn, SQLite and MariaDB, WebSockets,
the official ``openai`` SDK, an aiortc WebRTC peer, Silero VAD, Smart Turn, DeepFilterNet.
The same paths on real models are tested in ``tests/integration`` and ``tests/e2e``.
"""
