"""Access control: API keys, who may act for which user, per-key limits, browser checks."""
