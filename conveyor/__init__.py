"""Conveyor: a gated assembly line for ML models on Kubeflow Pipelines and KServe.

The engine (this package) is plain typed Python and never imports kfp; the KFP components in
``conveyor.components`` and pipelines in ``conveyor.pipelines`` are thin wrappers around it.
"""

__all__ = ["COMPONENT_IMAGE", "SERVING_IMAGE", "__version__"]


__version__ = "0.1.0"

# The one component image. The tag names the Python line so kfp.local recognises it as a
# Python image; overlays and `make images` use the same reference.
COMPONENT_IMAGE = f"ghcr.io/conveyor-ml/conveyor:{__version__}-python3.11"
# The conveyor-sklearn serving runtime: same lock file (and scikit-learn) as COMPONENT_IMAGE.
SERVING_IMAGE = f"ghcr.io/conveyor-ml/conveyor-serving:{__version__}-python3.11"
