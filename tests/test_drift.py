"""check_drift: PSI and grid KS per feature, score PSI, the decision, reports and the CLI."""

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from conveyor import distributions, drift
from conveyor.cli import main
from conveyor.config import DriftPolicy, load_pipeline_config
from conveyor.errors import BadInputError
from conveyor.sample import generate
from conveyor.tables import write_json, write_table
from tests.conftest import AS_OF, EXAMPLES

pytestmark = pytest.mark.unit

ROWS = 4000
SHIFTED = {"txn_count_24h", "merchant_risk_score", "channel", "amount"}


@pytest.fixture(scope="module")
def model_features() -> list[str]:
    cfg = load_pipeline_config(EXAMPLES / "pipeline.yaml")
    return [*cfg.features.numeric, *cfg.features.categorical]


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """Reference, a clean batch (same generator, other seed) and a drifted batch."""
    return {
        "reference": generate(ROWS, seed=101, as_of=AS_OF),
        "clean": generate(ROWS, seed=202, as_of=AS_OF),
        "drift": generate(ROWS, seed=303, as_of=AS_OF, mode="drift"),
    }


@pytest.fixture(scope="module")
def profile(frames, model_features) -> dict:
    return distributions.profile_frame(frames["reference"], model_features)


def _by_feature(report: dict) -> dict[str, dict]:
    return {f["feature"]: f for f in report["features"]}


# ------------------------------------------------------------------------------- KS on the grid

RNG_CASES = {
    "normal": lambda r: (r.normal(0, 1, 20_000), r.normal(0, 1, 20_000)),
    "normal-shifted": lambda r: (r.normal(0, 1, 20_000), r.normal(0.25, 1, 20_000)),
    "normal-wider": lambda r: (r.normal(0, 1, 20_000), r.normal(0, 1.4, 20_000)),
    "lognormal": lambda r: (r.lognormal(3, 1.2, 20_000), r.lognormal(3, 1.2, 20_000)),
    "lognormal-shifted": lambda r: (r.lognormal(3, 1.2, 20_000), r.lognormal(3.3, 1.2, 20_000)),
    "disjoint-above": lambda r: (r.normal(0, 1, 20_000), r.normal(50, 1, 20_000)),
}


@pytest.mark.parametrize("case", sorted(RNG_CASES))
def test_grid_ks_agrees_with_scipy_on_continuous_data(case):
    ref, cur = RNG_CASES[case](np.random.default_rng(17))
    spec = distributions.profile_column(pd.Series(ref))
    grid = distributions.ks_statistic(spec, np.sort(cur))
    exact = ks_2samp(ref, cur).statistic
    assert grid is not None
    assert abs(grid - exact) <= 0.015, f"{case}: grid KS {grid} vs scipy {exact}"
    assert grid <= exact + 1e-9, f"{case}: grid KS {grid} exceeds scipy {exact}"


def test_grid_ks_sees_a_shift_the_null_case_does_not():
    rng = np.random.default_rng(5)
    ref = pd.Series(rng.normal(0, 1, 20_000))
    spec = distributions.profile_column(ref)
    same = distributions.ks_statistic(spec, np.sort(rng.normal(0, 1, 20_000)))
    shifted = distributions.ks_statistic(spec, np.sort(rng.normal(0.5, 1, 20_000)))
    assert same is not None and shifted is not None
    assert same < 0.03 < 0.15 < shifted


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grid_ks_never_exceeds_the_exact_statistic_on_discrete_data(seed):
    rng = np.random.default_rng(seed)
    ref = rng.poisson(2.0, 20_000).astype(float)
    cur = rng.poisson(2.0 + seed, 20_000).astype(float)
    grid = distributions.ks_statistic(distributions.profile_column(pd.Series(ref)), np.sort(cur))
    assert grid is not None
    assert grid <= ks_2samp(ref, cur).statistic + 1e-9


def test_ks_is_none_without_values_or_ecdf():
    spec = distributions.profile_column(pd.Series(np.arange(100.0)))
    assert distributions.ks_statistic(spec, np.array([])) is None
    old = {k: v for k, v in spec.items() if k != "ecdf"}
    assert distributions.ks_statistic(old, np.arange(100.0)) is None


def test_numeric_fractions_put_the_missing_share_last():
    spec = distributions.profile_column(pd.Series(np.arange(1000, dtype=float)), bins=4)
    # 6 present values (sorted), 2 missing: total 8.
    values = np.array([0.0, 10.0, 300.0, 600.0, 900.0, 999.0])
    frac = distributions.numeric_fractions(spec, values, total=8)
    assert frac.tolist() == pytest.approx([2 / 8, 1 / 8, 1 / 8, 2 / 8, 2 / 8])
    assert frac.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ decision


def test_clean_batch_of_the_same_generator_is_stable(profile, frames, model_features):
    report = drift.check_drift(profile, frames["clean"], DriftPolicy())
    assert report["decision"] == "stable"
    assert report["drifted"] == []
    assert sorted(f["feature"] for f in report["features"]) == sorted(model_features)
    assert report["rows"] == {"reference": ROWS, "current": ROWS}
    assert report["summary"] == "stable: 0 of 16 features drifted"
    # Features are listed worst first.
    psis = [f["psi"] for f in report["features"]]
    assert psis == sorted(psis, reverse=True)


def test_drift_batch_names_the_shifted_features(profile, frames):
    report = drift.check_drift(profile, frames["drift"], DriftPolicy())
    assert report["decision"] == "drift"
    assert set(report["drifted"]) >= SHIFTED
    rows = _by_feature(report)
    for name in SHIFTED:
        assert rows[name]["drifted"] is True
        assert rows[name]["reasons"], name
    # Features the generator does not shift stay quiet.
    assert not rows["customer_age"]["drifted"]
    assert not rows["card_type"]["drifted"]
    # KS is numeric only; categorical features have None.
    assert rows["channel"]["ks"] is None and rows["channel"]["kind"] == "categorical"
    assert rows["merchant_risk_score"]["ks"] > 0.1
    assert rows["merchant_risk_score"]["ks_pvalue"] < 0.05
    assert report["summary"].startswith(f"drift: {len(report['drifted'])} of 16 features drifted")


def test_amount_drifts_by_ks_even_below_the_psi_threshold(profile, frames):
    report = drift.check_drift(profile, frames["drift"], DriftPolicy())
    amount = _by_feature(report)["amount"]
    assert amount["psi"] <= 0.25  # x1.6 on a log-normal: moderate PSI ...
    assert amount["drifted"] is True  # ... but a clear KS shift
    assert [r.split(" ")[0] for r in amount["reasons"]] == ["KS"]
    # Without the KS test, the same batch's amount is judged by PSI alone: not drifted.
    no_ks = drift.check_drift(profile, frames["drift"], DriftPolicy(ks_threshold=None))
    assert _by_feature(no_ks)["amount"]["drifted"] is False
    assert "amount" in no_ks["moderate"]
    assert "amount" not in no_ks["drifted"]


def test_min_drifted_features_raises_the_bar(profile, frames):
    policy = DriftPolicy(min_drifted_features=10)
    report = drift.check_drift(profile, frames["drift"], policy)
    assert 1 <= len(report["drifted"]) < 10
    assert report["decision"] == "stable"


def _scipy_ks_pvalue(d: float, n: int, m: int) -> float:
    """The KS p-value check_drift used before: scipy's exact kstwo.sf in round(n*m/(n+m))."""
    from scipy.stats import kstwo

    en = round(n * m / (n + m)) if n and m else 0
    return float(kstwo.sf(d, en)) if en else 1.0


@pytest.mark.parametrize("batch", ["clean", "drift", "drift-100-rows"])
@pytest.mark.parametrize("ks_threshold", [0.1, 0.01])
def test_asymptotic_ks_pvalue_leaves_the_verdicts_unchanged(
    profile, frames, monkeypatch, batch, ks_threshold
):
    """The fixture's reports with the asymptotic p-value and with scipy's exact one (as before)
    agree on the decision and on every feature's verdict; p-values within the tolerance of
    tests/test_distributions.py (5%). At ks_threshold 0.01 the p-value decides every numeric
    feature here (p from 0.009 to 1); 100 rows (ne 98 < 100) take scipy's path: identical."""
    current = frames["drift"].head(100) if batch == "drift-100-rows" else frames[batch]
    policy = DriftPolicy(ks_threshold=ks_threshold)
    new = drift.check_drift(profile, current, policy)
    monkeypatch.setattr(distributions, "ks_pvalue", _scipy_ks_pvalue)
    old = drift.check_drift(profile, current, policy)
    assert (new["decision"], new["drifted"]) == (old["decision"], old["drifted"])
    before = _by_feature(old)
    for name, row in _by_feature(new).items():
        assert row["drifted"] == before[name]["drifted"], name
        if row["ks_pvalue"] is None:
            continue
        p, exact = row["ks_pvalue"], before[name]["ks_pvalue"]
        if batch == "drift-100-rows":
            assert p == exact, name
        else:
            assert p == pytest.approx(exact, rel=0.05, abs=1e-6), name


def test_policy_features_limit_the_check(profile, frames):
    policy = DriftPolicy(features=["customer_age", "card_type"])
    report = drift.check_drift(profile, frames["drift"], policy)
    assert sorted(f["feature"] for f in report["features"]) == ["card_type", "customer_age"]
    assert report["decision"] == "stable"


# ------------------------------------------------------------------------------------ score PSI


def _scores(seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(rng.normal(-2.5 + shift, 1.0, ROWS))))


def test_score_psi_against_the_profile_score_entry(profile, frames):
    reference = {**profile, drift.SCORE: distributions.profile_column(pd.Series(_scores(1)))}
    policy = DriftPolicy(min_drifted_features=100)
    same = drift.check_drift(reference, frames["clean"], policy, current_scores=_scores(2))
    assert same["score"] is not None
    assert same["score"]["feature"] == "score"
    assert same["score"]["drifted"] is False
    assert same["decision"] == "stable"

    shifted = _scores(3, shift=1.5)
    report = drift.check_drift(reference, frames["clean"], policy, current_scores=shifted)
    assert report["drifted"] == []  # no feature drifted ...
    assert report["score"]["drifted"] is True  # ... the scores did
    assert report["score"]["psi"] > 0.25
    assert report["score"]["reasons"] == [f"score PSI {report['score']['psi']:.4f} > 0.25"]
    assert report["decision"] == "drift"
    assert "score PSI" in report["summary"] and "(drifted)" in report["summary"]


def test_reference_scores_override_the_profile_entry(profile, frames):
    policy = DriftPolicy(min_drifted_features=100)
    shifted = _scores(3, shift=1.5)
    # No score entry in the profile and no scores of the reference rows: skipped.
    report = drift.check_drift(profile, frames["clean"], policy, current_scores=shifted)
    assert report["score"] is None
    report = drift.check_drift(
        profile, frames["clean"], policy, current_scores=shifted, reference_scores=_scores(1)
    )
    assert report["score"]["drifted"] is True
    assert report["decision"] == "drift"
    # The same shifted scores as the reference: no score drift.
    report = drift.check_drift(
        profile, frames["clean"], policy, current_scores=shifted, reference_scores=shifted
    )
    assert report["score"]["psi"] == 0.0
    assert report["decision"] == "stable"


# --------------------------------------------------------------------------------------- errors


def test_reference_feature_missing_from_batch(profile, frames):
    batch = frames["clean"].drop(columns=["merchant_risk_score"])
    with pytest.raises(BadInputError, match=r"column\(s\) \['merchant_risk_score'\].*missing"):
        drift.check_drift(profile, batch, DriftPolicy())


def test_fewer_rows_than_min_rows(profile, frames):
    batch = frames["clean"].head(50)
    with pytest.raises(BadInputError, match="50 rows, below drift policy min_rows 100"):
        drift.check_drift(profile, batch, DriftPolicy())
    # At the bound it is judged.
    assert drift.check_drift(profile, batch, DriftPolicy(min_rows=50))["rows"]["current"] == 50


def test_policy_features_not_in_profile(profile, frames):
    policy = DriftPolicy(features=["amount", "merchant_rsk"])
    with pytest.raises(
        BadInputError, match=r"features \['merchant_rsk'\] are not in the reference"
    ):
        drift.check_drift(profile, frames["clean"], policy)


def test_numeric_reference_column_is_strings_in_batch(profile, frames):
    batch = frames["clean"].copy()
    batch["amount"] = batch["amount"].astype(str)
    with pytest.raises(BadInputError, match=r"column 'amount': .*says numeric.*object"):
        drift.check_drift(profile, batch, DriftPolicy())


def test_drift_policy_rejects_bad_values():
    from conveyor.config import model_from_data

    with pytest.raises(BadInputError, match=r"policy: psi_threshold: .*greater than 0 \(got -1\)"):
        model_from_data(DriftPolicy, {"psi_threshold": -1}, "policy")
    with pytest.raises(BadInputError, match=r"policy: ks_threshold: .*less than or equal to 1"):
        model_from_data(DriftPolicy, {"ks_threshold": 1.5}, "policy")
    with pytest.raises(BadInputError, match=r"policy: psi_treshold: Extra inputs"):
        model_from_data(DriftPolicy, {"psi_treshold": 0.2}, "policy")


# ------------------------------------------------------------------------- reference formats


def test_profile_without_ecdf_gives_no_ks_but_still_psi(profile, frames):
    old = copy.deepcopy(profile)
    for spec in old["columns"].values():
        spec.pop("ecdf", None)
    report = drift.check_drift(old, frames["drift"], DriftPolicy())
    rows = _by_feature(report)
    assert all(r["ks"] is None and r["ks_pvalue"] is None for r in rows.values())
    assert rows["txn_count_24h"]["psi"] > 0.25
    assert rows["txn_count_24h"]["reasons"] == [f"PSI {rows['txn_count_24h']['psi']:.4f} > 0.25"]
    assert report["decision"] == "drift"
    # The text report shows "-" where KS is missing.
    line = next(x for x in drift.render_text(report).splitlines() if x.startswith("amount "))
    assert line.split()[2] == "-"


def test_load_reference_from_json_and_from_data(tmp_path, frames, profile, model_features):
    path = write_json(profile, tmp_path / "profile.json")
    assert drift.load_reference(path)["columns"].keys() == profile["columns"].keys()
    data = write_table(frames["reference"], tmp_path / "ref.parquet")
    loaded = drift.load_reference(data, ["amount", "channel"])
    assert sorted(loaded["columns"]) == ["amount", "channel"]
    assert loaded["source"] == str(data)
    assert loaded["columns"]["amount"] == profile["columns"]["amount"]
    with pytest.raises(BadInputError, match=r"reference data has no column\(s\) \['nope'\]"):
        drift.load_reference(data, ["amount", "nope"])
    with pytest.raises(BadInputError, match="no 'columns' mapping"):
        drift.load_reference(write_json({"rows": 3}, tmp_path / "bad.json"))


# -------------------------------------------------------------------------------------- reports


def test_markdown_has_one_row_per_feature_and_the_decision(profile, frames, model_features):
    report = drift.check_drift(profile, frames["drift"], DriftPolicy())
    md = drift.render_markdown(report)
    assert md.startswith("# Drift check: DRIFT\n")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(model_features)  # header + one per feature
    for name in model_features:
        assert sum(line.startswith(f"| {name} |") for line in rows) == 1, name
    drifted_rows = [line for line in rows if "**yes**" in line]
    assert len(drifted_rows) == len(report["drifted"])
    stable = drift.check_drift(profile, frames["clean"], DriftPolicy())
    assert drift.render_markdown(stable).startswith("# Drift check: STABLE\n")


def test_html_escapes_feature_names():
    rng = np.random.default_rng(0)
    name = "amount<b>bold</b>"
    ref = pd.DataFrame({name: rng.normal(0, 1, 500)})
    cur = pd.DataFrame({name: rng.normal(3, 1, 500)})
    report = drift.check_drift(distributions.profile_frame(ref), cur, DriftPolicy())
    assert report["decision"] == "drift"
    page = drift.render_html(report)
    assert "<b>bold</b>" not in page
    assert "amount&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<h1>Drift check: DRIFT</h1>" in page


def test_write_reports_writes_json_markdown_html(tmp_path, profile, frames):
    report = drift.check_drift(profile, frames["drift"], DriftPolicy())
    paths = drift.write_reports(report, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"drift.json", "drift.md", "drift.html"}
    assert json.loads((tmp_path / "out" / "drift.json").read_text()) == json.loads(
        json.dumps(report)
    )
    assert (tmp_path / "out" / "drift.md").read_text() == drift.render_markdown(report)
    assert (tmp_path / "out" / "drift.html").read_text().startswith("<!doctype html>")


# ------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def batches(tmp_path_factory, frames) -> dict[str, str]:
    root = tmp_path_factory.mktemp("drift-cli")
    return {k: str(write_table(df, root / f"{k}.parquet")) for k, df in frames.items()}


def test_cli_clean_batch_exits_0(batches, capsys):
    code = main(["drift", "--reference", batches["reference"], "--current", batches["clean"]])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("stable: 0 of ")


def test_cli_drift_batch_exits_5_with_json(batches, capsys):
    args = ["drift", "--reference", batches["reference"], "--current", batches["drift"]]
    assert main([*args, "--format", "json"]) == 5
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] == "drift"
    assert set(report["drifted"]) >= SHIFTED


def test_cli_config_limits_the_check_to_model_features(batches, capsys, model_features):
    args = ["drift", "--reference", batches["reference"], "--current", batches["clean"]]
    assert main([*args, "--format", "json"]) == 0
    everything = {f["feature"] for f in json.loads(capsys.readouterr().out)["features"]}
    assert {"id", "label"} <= everything  # without a config: every column of the batch
    config = str(EXAMPLES / "pipeline.yaml")
    assert main([*args, "--config", config, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(f["feature"] for f in report["features"]) == sorted(model_features)
    assert report["policy"]["features"] == model_features


def test_cli_report_dir_writes_three_files(batches, tmp_path, capsys):
    out = tmp_path / "reports"
    args = ["drift", "--reference", batches["reference"], "--current", batches["drift"]]
    assert main([*args, "--report-dir", str(out)]) == 5
    assert sorted(p.name for p in out.iterdir()) == ["drift.html", "drift.json", "drift.md"]
    assert json.loads((out / "drift.json").read_text())["decision"] == "drift"
    assert "DRIFT" in capsys.readouterr().out


def test_cli_drift_imports_no_scipy(batches):
    """`conveyor drift` on 4,000 vs 4,000 rows (ne 2,000: the asymptotic KS p-value) imports
    no scipy (~1 s here) and nothing else heavy; a fresh process, as a user runs it."""
    import subprocess
    import sys

    code = (
        "import sys; from conveyor.cli import main; "
        f"code = main(['drift', '--reference', {batches['reference']!r}, '--current', "
        f"{batches['drift']!r}]); "
        "print(sorted(m for m in ('scipy', 'sklearn', 'mlflow', 'kfp') if m in sys.modules)); "
        "sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 5, proc.stderr[-2000:]
    assert proc.stdout.startswith("drift: ")
    assert proc.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("which", "extra", "message"),
    [
        ("current", [], "nope.parquet: file not found"),
        ("reference", [], "nope.parquet: file not found"),
        (None, ["--psi-threshold", "-1"], r"--psi-threshold: psi_threshold: .*greater than 0"),
        (None, ["--features", "amount,nope"], r"reference data has no column\(s\) \['nope'\]"),
    ],
)
def test_cli_bad_input_exits_2(batches, tmp_path, capsys, which, extra, message):
    paths = {"reference": batches["reference"], "current": batches["clean"]}
    if which:
        paths[which] = str(tmp_path / "nope.parquet")
    argv = ["drift", "--reference", paths["reference"], "--current", paths["current"], *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(message, err), err
