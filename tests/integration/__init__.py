"""Integration tests, grouped by feature: auth/, bench/, llm/, memory/, models/, openai/,
operations/, stt/, tts/.

Still at this level, to be moved to a realtime/ folder by whoever restructures
``orchestrator/realtime`` (they edit these files): test_realtime_ws.py,
test_realtime_turn_taking.py, test_korean_turn_taking.py, test_voice_chat_api.py and
test_voice_turns.py (openai/test_realtime_sdk.py belongs there too). Sessions and storage
(test_sessions_api.py, test_storage.py, test_mariadb_restart.py) and test_chat_prompt.py
(named by tests/unit/realtime/test_wiring.py) stay here as well.
"""
