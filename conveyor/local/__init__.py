"""Stand-ins for cluster parts on one machine: a model server process, nginx as the canary
router, Prometheus and Alertmanager from Debian's packages, and the rollout scenario sim.

Used by ``conveyor run``/``serve``/``rollout-sim`` and the tests; never on a cluster, and never
imported by the cluster-facing engine (``tests/test_architecture.py``)."""

__all__ = []
