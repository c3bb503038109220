// Live updates: see live.py. Filled in with the server-sent events.
