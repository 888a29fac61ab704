"""Serving many users at once: the continuous-batching decode engine and the HTTP API on it."""
