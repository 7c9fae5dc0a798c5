"""Serving: InferenceService builders, the local model server, smoke tests, shadow replay."""

__all__ = []
