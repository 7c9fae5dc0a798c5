"""Rollout: cluster access, deploy/promote/rollback actions, plans (analysis: issue 5)."""

__all__ = []
