"""Voice chat orchestrator: Litestar service over Triton-served STT, LLM and TTS."""
