"""``conveyor submit | schedule | runs``: the training pipeline on a Kubeflow Pipelines cluster.

Kept out of ``conveyor.cli`` so the engine never imports kfp at module level: each handler
imports ``conveyor.pipelines.submit`` (which uses ``kfp.Client``) when it runs.

Exit codes: 0 ok, 2 bad input (package, parameter, cron, duplicate schedule; nothing was
created), 7 the KFP API is unreachable or refused the request.
"""

import argparse
import json
import os
import textwrap
from typing import Any

HOST_ENV = "KFP_HOST"
TOKEN_ENV = "KF_PIPELINES_TOKEN"  # read by conveyor.pipelines.submit only; never printed

_AUTH_EPILOG = f"""connection:
  --host is the KFP UI/API URL; without a cluster ingress, port-forward the UI:
    kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80   # then --host http://localhost:8080
  behind an auth proxy, export {TOKEN_ENV}=<bearer token> (it is sent, never printed).
exit codes: 0 ok, 2 bad input (nothing created), 7 KFP API unreachable or refused.
"""


def _common(p: argparse.ArgumentParser, *, experiment_default: str | None) -> None:
    env_host = os.environ.get(HOST_ENV)
    p.add_argument(
        "--host",
        default=env_host,
        required=not env_host,
        help=f"KFP URL, e.g. http://localhost:8080 (default: ${HOST_ENV}"
        + (f", now {env_host})" if env_host else ", unset)"),
    )
    if experiment_default:
        p.add_argument(
            "--experiment",
            default=experiment_default,
            help=f"KFP experiment, created if missing (default {experiment_default})",
        )
    else:
        p.add_argument("--experiment", help="only runs of this experiment (default: all)")
    p.add_argument("--namespace", help="Kubernetes namespace (multi-user Kubeflow profiles)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")


def _wrap(text: str) -> str:
    """Descriptions are wrapped here: the raw formatter keeps the epilogs' layout."""
    return textwrap.fill(text, width=88)


def _param_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable); names are checked against the compiled "
        "pipeline's inputs before anything is sent",
    )


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``submit``, ``schedule`` and ``runs`` to the ``conveyor`` subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "submit",
        help="start one run of a compiled pipeline on Kubeflow Pipelines",
        description=_wrap(
            "Submit PIPELINE.yaml (e.g. pipelines/training/pipeline.yaml) as one run "
            "in an experiment (created if missing). The package and every --param are checked "
            "before any request; prints the run id and its URL."
        ),
        epilog="example:\n  conveyor submit pipelines/training/pipeline.yaml "
        "--host http://localhost:8080 --param data_uri=s3://bucket/batch.parquet\n\n"
        + _AUTH_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("pipeline", metavar="PIPELINE.yaml", help="compiled pipeline package")
    _common(p, experiment_default="conveyor")
    _param_flag(p)
    p.add_argument("--run-name", help="run display name (default: pipeline name + UTC time)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser(
        "schedule",
        help="retrain on a schedule: a KFP recurring run (cron, UTC)",
        description=_wrap(
            "Create an enabled KFP recurring run of PIPELINE.yaml. --cron is standard "
            "5-field cron in UTC ('0 2 * * 0' = Sundays 02:00); it is sent in KFP's 6-field form "
            "(seconds first). At most one run at a time (max concurrency 1), and missed intervals "
            "are not backfilled unless --catchup. A recurring run with the same --name in the "
            "experiment is refused (exit 2), never duplicated."
        ),
        epilog="example:\n  conveyor schedule pipelines/training/pipeline.yaml "
        "--host http://localhost:8080 --cron '0 2 * * 0' --name weekly-retrain\n\n" + _AUTH_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("pipeline", metavar="PIPELINE.yaml", help="compiled pipeline package")
    p.add_argument(
        "--cron",
        required=True,
        help="5-field cron, UTC, e.g. '0 2 * * 0' (6 fields with seconds first also accepted)",
    )
    p.add_argument("--name", help="recurring run name (default: the pipeline's name)")
    _common(p, experiment_default="conveyor")
    _param_flag(p)
    p.add_argument(
        "--catchup",
        action="store_true",
        help="backfill every missed interval after a pause (default: no catch-up, only the "
        "latest missed interval runs)",
    )
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser(
        "runs",
        help="recent KFP runs with the quality gate's verdict",
        description=_wrap(
            "List recent runs, newest first, with state, times and the training "
            "gate's verdict: approve / hold (that register task succeeded), reject (gate ran, "
            "nothing registered, run succeeded), skipped (a continuous_training run whose "
            "trigger check skipped training), - (running, failed before the gate, or not a "
            "training run)."
        ),
        epilog=_AUTH_EPILOG,
        formatter_class=fmt,
    )
    _common(p, experiment_default=None)
    p.add_argument("--limit", type=int, default=10, help="how many runs (default 10)")
    p.set_defaults(func=cmd_runs)


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
