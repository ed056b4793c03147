"""The Redis truth: the key layout, the Lua scripts that move messages between
states, connections (plain, TLS, Sentinel), riding out restarts, and the Celery
signals that only point at work kept here."""
