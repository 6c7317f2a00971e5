"""Conversation memory: finished turns embedded by the ``embedder`` Triton model into a
Milvus collection; a user's relevant past turns retrieved into the LLM prompt.

SQL is the source of truth: memory is an aid, so its failures never break a chat (the
health endpoint says ``degraded``), and ``voicechat memory reindex`` rebuilds the
collection from the ``turns`` table.
"""
