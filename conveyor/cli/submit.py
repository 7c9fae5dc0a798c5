"""``conveyor submit | schedule | runs``: the training pipeline on a Kubeflow Pipelines cluster.

Rows of the ``conveyor`` command table; each handler imports ``conveyor.pipelines.submit``
(which uses ``kfp.Client``) when it runs, so building the parser never imports kfp.

Exit codes: 0 ok, 2 bad input (package, parameter, cron, duplicate schedule; nothing was
created), 7 the KFP API is unreachable or refused the request.
"""

import argparse
import json
import os
import textwrap
from typing import Any

from conveyor.cli._table import Arg, Command, arg

__all__ = ["commands"]

HOST_ENV = "KFP_HOST"
TOKEN_ENV = "KF_PIPELINES_TOKEN"  # read by conveyor.pipelines.submit only; never printed

_AUTH_EPILOG = f"""connection:
  --host is the KFP UI/API URL; without a cluster ingress, port-forward the UI:
    kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80   # then --host http://localhost:8080
  behind an auth proxy, export {TOKEN_ENV}=<bearer token> (it is sent, never printed).
exit codes: 0 ok, 2 bad input (nothing created), 7 KFP API unreachable or refused.
"""


def _wrap(text: str) -> str:
    """Descriptions are wrapped here: the raw formatter keeps the epilogs' layout."""
    return textwrap.fill(text, width=88)


def _common(*, experiment_default: str | None) -> list[Arg]:
    env_host = os.environ.get(HOST_ENV)
    host = arg(
        "--host", default=env_host, required=not env_host,
        help=f"KFP URL, e.g. http://localhost:8080 (default: ${HOST_ENV}"
        + (f", now {env_host})" if env_host else ", unset)"),
    )  # fmt: skip
    if experiment_default:
        experiment = arg(
            "--experiment", default=experiment_default,
            help=f"KFP experiment, created if missing (default {experiment_default})",
        )  # fmt: skip
    else:
        experiment = arg("--experiment", help="only runs of this experiment (default: all)")
    return [
        host,
        experiment,
        arg("--namespace", help="Kubernetes namespace (multi-user Kubeflow profiles)"),
        arg("--format", choices=["text", "json"], default="text", help="output format"),
    ]


PIPELINE = arg("pipeline", metavar="PIPELINE.yaml", help="compiled pipeline package")
PARAM = arg(
    "--param", action="append", default=[], metavar="NAME=VALUE",
    help="pipeline parameter (repeatable); names are checked against the compiled "
    "pipeline's inputs before anything is sent",
)  # fmt: skip


def commands() -> list[Command]:
    """``submit``, ``schedule`` and ``runs`` (built when the parser is, to read KFP_HOST)."""
    return [
        Command(
            "submit", "start one run of a compiled pipeline on Kubeflow Pipelines", cmd_submit,
            description=_wrap(
                "Submit PIPELINE.yaml (e.g. pipelines/training/pipeline.yaml) as one run "
                "in an experiment (created if missing). The package and every --param are "
                "checked before any request; prints the run id and its URL."
            ),
            epilog="example:\n  conveyor submit pipelines/training/pipeline.yaml "
            "--host http://localhost:8080 --param data_uri=s3://bucket/batch.parquet\n\n"
            + _AUTH_EPILOG,
            raw=True,
            args=[
                PIPELINE, *_common(experiment_default="conveyor"), PARAM,
                arg("--run-name", help="run display name (default: pipeline name + UTC time)"),
            ],
        ),
        Command(
            "schedule", "retrain on a schedule: a KFP recurring run (cron, UTC)", cmd_schedule,
            description=_wrap(
                "Create an enabled KFP recurring run of PIPELINE.yaml. --cron is standard "
                "5-field cron in UTC ('0 2 * * 0' = Sundays 02:00); it is sent in KFP's "
                "6-field form (seconds first). At most one run at a time (max concurrency 1), "
                "and missed intervals are not backfilled unless --catchup. A recurring run "
                "with the same --name in the experiment is refused (exit 2), never duplicated."
            ),
            epilog="example:\n  conveyor schedule pipelines/training/pipeline.yaml "
            "--host http://localhost:8080 --cron '0 2 * * 0' --name weekly-retrain\n\n"
            + _AUTH_EPILOG,
            raw=True,
            args=[
                PIPELINE,
                arg("--cron", required=True, help="5-field cron, UTC, e.g. '0 2 * * 0' "
                    "(6 fields with seconds first also accepted)"),
                arg("--name", help="recurring run name (default: the pipeline's name)"),
                *_common(experiment_default="conveyor"), PARAM,
                arg("--catchup", action="store_true",
                    help="backfill every missed interval after a pause (default: no "
                    "catch-up, only the latest missed interval runs)"),
            ],
        ),
        Command(
            "runs", "recent KFP runs with the quality gate's verdict", cmd_runs,
            description=_wrap(
                "List recent runs, newest first, with state, times and the training "
                "gate's verdict: approve / hold (that register task succeeded), reject (gate "
                "ran, nothing registered, run succeeded), skipped (a continuous_training run "
                "whose trigger check skipped training), - (running, failed before the gate, or "
                "not a training run)."
            ),
            epilog=_AUTH_EPILOG,
            raw=True,
            args=[
                *_common(experiment_default=None),
                arg("--limit", type=int, default=10, help="how many runs (default 10)"),
            ],
        ),
    ]  # fmt: skip


def _print(result: Any, args: argparse.Namespace, text: str) -> None:
    print(json.dumps(result, indent=2, sort_keys=True) if args.format == "json" else text)


def _params(args: argparse.Namespace) -> dict[str, str]:
    """``--param NAME=VALUE`` checked against the parameters the compiled package declares
    (before anything reaches the KFP API)."""
    from conveyor.pipelines import submit as kfp_submit

    spec = kfp_submit.load_package(args.pipeline)
    return kfp_submit.parse_params(args.param, kfp_submit.declared_params(spec))


def cmd_submit(args: argparse.Namespace) -> int:
    from conveyor.pipelines import submit as kfp_submit

    params = _params(args)
    result = kfp_submit.submit(
        args.pipeline,
        args.host,
        experiment=args.experiment,
        params=params,
        run_name=args.run_name,
        namespace=args.namespace,
    )
    _print(
        result,
        args,
        f"submitted run {result['run_name']!r} ({result['run_id']}) "
        f"to experiment {args.experiment!r}\n  {result['url']}",
    )
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from conveyor.pipelines import submit as kfp_submit

    params = _params(args)
    result = kfp_submit.schedule(
        args.pipeline,
        args.host,
        args.cron,
        experiment=args.experiment,
        job_name=args.name,
        params=params,
        namespace=args.namespace,
        catchup=args.catchup,
    )
    catchup = "catch-up on" if args.catchup else "no catch-up"
    _print(
        result,
        args,
        f"scheduled {result['name']!r} ({result['recurring_run_id']}) in experiment "
        f"{args.experiment!r}\n"
        f"  cron (KFP, seconds first): {result['cron']}   max 1 concurrent run, {catchup}\n"
        f"  next runs (UTC): {', '.join(result['next_runs'])}\n"
        f"  {result['url']}",
    )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from conveyor.pipelines import submit as kfp_submit

    rows = kfp_submit.list_runs(
        args.host, experiment=args.experiment, limit=args.limit, namespace=args.namespace
    )
    _print(rows, args, kfp_submit.render_runs(rows))
    return 0
