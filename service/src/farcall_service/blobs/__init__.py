"""Large results and payloads, kept apart from the task rows (``interface``)."""
