"""``conveyor new TEAM``: a working pipeline template a platform team hands to a new team.

The files run as written on the shipped sample generator (``conveyor validate-config``, then
``conveyor run --smoke``); each field says what to change for the team's own data and cluster.
"""

from pathlib import Path

from conveyor import COMPONENT_IMAGE
from conveyor.errors import BadInputError

__all__ = ["scaffold"]


PIPELINE = """\
# Pipeline template for team {team} (conveyor.config.PipelineConfig; paths relative to this file).
# Check it with `conveyor validate-config {folder}/pipeline.yaml`; compile it with
# `conveyor compile {folder}/pipeline.yaml -o {team}.yaml`.
name: {team}
team: {team}
contract: contract.yaml         # data contract of the incoming batch
gate_policy: gate_policy.yaml   # approve / hold / reject rules
rollout: rollout.yaml           # canary plan used by continuous_training after an approval
data:
  source: sample                # `file` + `path:` (a local file or s3://, gs://, minio:// URI)
  sample: {{rows: 50000, seed: 7, reference_seed: 1007}}
features:                       # replace with your columns
  label: label
  key: id
  numeric: [amount, customer_age, account_age_days, txn_count_24h, avg_amount_30d,
            distance_from_home_km, minutes_since_last_txn, credit_limit, merchant_risk_score,
            hour_of_day, device_trust_score, cards_on_account]
  categorical: [merchant_category, channel, country, card_type]
  min_category_frequency: 20
training:
  estimator: hist_gradient_boosting   # or logistic_regression
  params: {{max_iter: 200, learning_rate: 0.1}}
  seed: 42
tracking:
  experiment: {team}
retrain:                        # what starts a retraining run (continuous_training)
  on_new_data: false            # true: every new batch fingerprint retrains
  on_drift: true                # check_drift over threshold retrains
  max_age_days: 30              # a champion older than this retrains
  schedule: "0 2 * * 0"         # cron (UTC) for `conveyor schedule`: Sundays 02:00
  skip_if_unchanged: true       # same data, code, config and seed: skip, naming the version
  drift: {{psi_threshold: 0.25, ks_threshold: 0.1, score_psi_threshold: 0.25}}
smoke: {{rows: 5000}}             # `conveyor run --smoke`: sampled rows, small estimator (PRs)
cluster:                        # compile-time environment: nothing is patched in compiled YAML
  image: {image}
  namespace: {team}
  mlflow_tracking_uri: http://mlflow.mlflow.svc.cluster.local:5000
  data_uri: ""                  # default batch URI, e.g. s3://{team}-data/transactions.parquet
  node_selector: {{}}             # e.g. {{kubernetes.io/arch: amd64}}
  resources:
    default: {{cpu_request: 500m, memory_request: 1Gi, memory_limit: 2Gi, timeout_seconds: 3600}}
    train: {{cpu_request: "2", memory_request: 4Gi, memory_limit: 8Gi, timeout_seconds: 7200}}
  secrets:                      # Kubernetes Secrets by NAME; values never enter this file
    - name: {team}-mlflow
      env: {{username: MLFLOW_TRACKING_USERNAME, password: MLFLOW_TRACKING_PASSWORD}}
      steps: [check_drift, check_trigger, train, evaluate, quality_gate, register_model]
"""

CONTRACT = """\
# Data contract for team {team} (conveyor.contracts.Contract): replace with your columns.
name: {team}-transactions
version: 1
key: [id]
rows: {{min: 500}}
drift: {{max_psi: 0.25}}
columns:                  # every column pipeline.yaml names must be declared here
  id:                     {{dtype: int, min: 1}}
  event_time:             {{dtype: datetime}}
  label:                  {{dtype: int, min: 0, max: 1}}
  amount:                 {{dtype: float, min: 0}}
  customer_age:           {{dtype: float, nullable: true, min: 18, max: 120}}
  account_age_days:       {{dtype: float, min: 0}}
  txn_count_24h:          {{dtype: int, min: 0}}
  avg_amount_30d:         {{dtype: float, nullable: true, min: 0}}
  distance_from_home_km:  {{dtype: float, nullable: true, min: 0}}
  minutes_since_last_txn: {{dtype: float, min: 0}}
  credit_limit:           {{dtype: float, min: 0}}
  merchant_risk_score:    {{dtype: float, min: 0, max: 1}}
  hour_of_day:            {{dtype: int, min: 0, max: 23}}
  device_trust_score:     {{dtype: float, nullable: true, min: 0, max: 1}}
  cards_on_account:       {{dtype: int, min: 1}}
  merchant_category:      {{dtype: string}}
  channel:                {{dtype: string, allowed: [pos, online, atm, phone]}}
  country:                {{dtype: string}}
  card_type:              {{dtype: string, allowed: [debit, credit, prepaid]}}
  group:                  {{dtype: string}}
"""

GATE = """\
# Quality gate for team {team} (conveyor.gate.GatePolicy).
rules:
  - {{metric: metrics.roc_auc, min: 0.8, max_drop: 0.01}}
  - {{metric: metrics.recall, min: 0.3, on_fail: hold}}
"""

ROLLOUT = """\
# Rollout plan for team {team} (conveyor.rollout.plan.RolloutPlan); the analysis defaults follow
# the progressive-delivery table (error rate, p99 against the champion, score PSI).
strategy: canary
steps: [5, 25, 50, 100]
require_approval: false
smoke:                   # before any traffic; `conveyor run` holds its local smoke test to it
  max_p99_ms: 250        # single-row V1 p99 bound; raise it on a slow or shared machine
  max_batch_rows: 1000
"""


def scaffold(team: str, parent: str | Path = ".", force: bool = False) -> list[Path]:
    """Write ``<parent>/<team>/`` with pipeline, contract, gate policy, rollout plan and the
    rollout's least-privilege Role."""
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", team):
        raise BadInputError(
            f"team: {team!r} must be lowercase letters, digits and '-', at most 63 characters "
            "(it names the pipeline, the model and the namespace)"
        )
    folder = Path(parent) / team
    templates = {
        "pipeline.yaml": PIPELINE,
        "contract.yaml": CONTRACT,
        "gate_policy.yaml": GATE,
        "rollout.yaml": ROLLOUT,
    }
    # everything rendered before anything is written
    files = {
        name: template.format(team=team, folder=folder, image=COMPONENT_IMAGE)
        for name, template in templates.items()
    }
    files["rbac.yaml"] = _rbac(team)  # generated: conveyor.rollout.rbac
    existing = [name for name in files if (folder / name).exists()]
    if existing and not force:
        raise BadInputError(
            f"{folder}: {', '.join(existing)} already exist; nothing was written "
            "(--force overwrites)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


def _rbac(team: str) -> str:
    """The team's least-privilege Role and RoleBinding (conveyor.rollout.rbac)."""
    import yaml

    from conveyor.rollout import rbac
    from conveyor.rollout.cluster import RUNTIME_READER

    head = (
        f"# What the rollout of InferenceService {team} may do in namespace {team}: patch only\n"
        f"# {team} and {team}-shadow, delete only the shadow and its mirror, read the\n"
        "# namespace's ServingRuntimes (conveyor.rollout.rbac).\n"
        f"# Apply with: kubectl apply -n {team} -f rbac.yaml\n"
        "# Deploy also reads the cluster-scoped ClusterServingRuntime (its scikit-learn version),\n"
        f"# which only the ClusterRole {RUNTIME_READER} (manifests/runtime) grants; a cluster\n"
        "# admin binds it once for this namespace:\n"
        f"#   kubectl create clusterrolebinding {RUNTIME_READER}-{team} \\\n"
        f"#     --clusterrole={RUNTIME_READER} --serviceaccount={team}:pipeline-runner\n"
    )
    return head + yaml.safe_dump_all(rbac.manifests([team]), sort_keys=False)
