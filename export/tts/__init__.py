"""Text-to-speech export: Piper voices and transformers VITS (MMS-TTS) checkpoints."""
