"""The rollout pipeline (deploy, smoke test, step, promote or roll back)."""
