"""evaluate: known metric values, slices, fairness, latency, sanity, golden set, champion."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from conveyor import evaluation, features, training
from conveyor import model as model_files
from conveyor.config import SliceSpec, TrackingSpec, TrainingSpec
from conveyor.errors import BadInputError, ConveyorError
from conveyor.stages import evaluate
from conveyor.tables import read_table
from tests.conftest import EXAMPLES, fast_evaluation

pytestmark = pytest.mark.unit

GOLDEN = EXAMPLES / "golden_v1.csv"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_frame, config):
    """Prepared splits and one model trained as the tests' helper trains it (shared)."""
    root = tmp_path_factory.mktemp("evaluation")
    prep = features.FeatureOutputs.under(root / "prep")
    features.prepare(small_frame.copy(), config.features, prep)
    tracking = TrackingSpec(uri="memory://", experiment="t")
    spec = TrainingSpec(params={"max_iter": 40}, seed=3)
    training.train(prep.train, prep.validation, prep.preprocessing, spec, tracking, root / "model")
    return {
        "root": root,
        "prep": prep,
        "model": root / "model",
        "holdout": read_table(prep.holdout),
    }


@pytest.fixture(scope="module")
def champion(trained):
    """A second, different model on the same splits (logistic regression)."""
    prep = trained["prep"]
    out = trained["root"] / "champion"
    training.train(
        prep.train,
        prep.validation,
        prep.preprocessing,
        TrainingSpec(estimator="logistic_regression"),
        TrackingSpec(uri="memory://", experiment="t"),
        out,
    )
    return out


@pytest.fixture(scope="module")
def collapsed_model(trained):
    """Pipeline(frozen preprocessing, DummyClassifier): the prior for every row -> all 0."""
    prep = trained["prep"]
    feature_spec = json.loads((prep.preprocessing / "feature_spec.json").read_text())
    train_df = read_table(prep.train)
    preprocessor = __import__("joblib").load(prep.preprocessing / "preprocessor.joblib")
    model = Pipeline(
        [("preprocess", FrozenEstimator(preprocessor)), ("model", DummyClassifier())]
    ).fit(model_files.inputs(train_df, feature_spec), train_df["label"].to_numpy())
    out = trained["root"] / "dummy"
    model_files.save_model(model, feature_spec, out)
    return out


def _scores(trained, model_dir=None):
    model, spec = model_files.load_model(model_dir or trained["model"])
    holdout = trained["holdout"]
    proba = model_files.predict_proba(model, holdout, spec)
    return holdout["label"].to_numpy(), proba


# ---------------------------------------------------------------------------- metrics


def test_metrics_match_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = evaluation.classification_metrics(y, p, 0.5)
    assert m["accuracy"] == 0.5
    assert m["precision"] == 0.5
    assert m["recall"] == 0.5
    assert m["roc_auc"] == 0.75
    expected_ll = -np.mean([np.log(0.9), np.log(0.4), np.log(0.4), np.log(0.9)])
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert evaluation.confusion(y, p, 0.5)["matrix"] == [[1, 1], [1, 1]]


def test_single_class_holdout_has_no_auc_and_no_recall():
    m = evaluation.classification_metrics(np.zeros(5), np.full(5, 0.2), 0.5)
    assert math.isnan(m["roc_auc"])
    assert math.isnan(m["recall"])  # no positive rows: undefined, not 0
    assert math.isnan(m["precision"])  # no predicted positives
    assert m["accuracy"] == 1.0


def test_roc_is_thinned_and_finite():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    curve = evaluation.roc(y, rng.random(5000))
    assert len(curve["fpr"]) <= evaluation.ROC_POINTS
    assert all(math.isfinite(t) for t in curve["thresholds"])


# ----------------------------------------------------------------------------- slices


def test_slices_by_where_and_by_category_count_rows_like_pandas(trained, config):
    holdout = trained["holdout"]
    spec = fast_evaluation(
        config,
        golden_set=None,
        min_slice_rows=1,
        slices=[
            SliceSpec(name="cheap", where="amount < 20"),
            SliceSpec(
                name="online_prepaid", where="channel == 'online' and card_type == 'prepaid'"
            ),
            SliceSpec(name="card", by="card_type"),
        ],
    )
    block = evaluation.evaluate_model(trained["model"], holdout, spec, None)
    slices = block["slices"]
    assert slices["cheap"]["rows"] == len(holdout.query("amount < 20"))
    assert slices["online_prepaid"]["rows"] == len(
        holdout[(holdout.channel == "online") & (holdout.card_type == "prepaid")]
    )
    counts = holdout["card_type"].value_counts()
    assert {n: s["rows"] for n, s in slices.items() if n.startswith("card_")} == {
        f"card_{v}": int(c) for v, c in counts.items()
    }
    assert slices["card_credit"]["where"] == "card_type == 'credit'"
    # slice metrics are the holdout metrics of exactly those rows
    y, proba = _scores(trained)
    mask = (holdout["amount"] < 20).to_numpy()
    expected = evaluation.classification_metrics(y[mask], proba[mask], spec.threshold)
    for k, v in slices["cheap"]["metrics"].items():
        assert v == (round(expected[k], 6) if math.isfinite(expected[k]) else None), k
    assert slices["cheap"]["metrics"]["rows"] == mask.sum()


def test_tiny_slice_reports_rows_and_null_metrics(trained, config):
    holdout = trained["holdout"]
    spec = fast_evaluation(
        config,
        golden_set=None,
        min_slice_rows=30,
        slices=[
            SliceSpec(name="huge", where="amount >= 1000"),
            SliceSpec(name="none", where="amount < 0"),
        ],
    )
    slices = evaluation.evaluate_model(trained["model"], holdout, spec, None)["slices"]
    huge = int((holdout["amount"] >= 1000).sum())
    assert 0 < huge < 30
    assert slices["huge"]["rows"] == huge
    assert slices["huge"]["metrics"] is None
    assert slices["huge"]["note"] == f"{huge} rows < min_slice_rows 30: not scored"
    assert slices["none"] == {
        "where": "amount < 0",
        "rows": 0,
        "metrics": None,
        "note": "0 rows < min_slice_rows 30: not scored",
    }


def test_single_class_slice_has_null_auc_and_recall(trained, config):
    holdout = trained["holdout"]
    spec = fast_evaluation(
        config, golden_set=None, slices=[SliceSpec(name="legit", where="label == 0")]
    )
    m = evaluation.evaluate_model(trained["model"], holdout, spec, None)["slices"]["legit"]
    assert m["rows"] == int((holdout["label"] == 0).sum())
    assert m["metrics"]["roc_auc"] is None
    assert m["metrics"]["recall"] is None
    assert m["metrics"]["positive_rate"] == 0.0


@pytest.mark.parametrize(
    ("slice_", "message"),
    [
        (
            SliceSpec(name="broken", where="amount >>= 3"),
            r"evaluation\.slices 'broken': where 'amount >>= 3' cannot be evaluated",
        ),
        (
            SliceSpec(name="ghost", where="velocity > 3"),
            r"evaluation\.slices 'ghost': where 'velocity > 3' cannot be evaluated.*velocity",
        ),
        (
            SliceSpec(name="numeric", where="amount * 2"),
            r"evaluation\.slices 'numeric': where 'amount \* 2' is not a boolean expression",
        ),
        (
            SliceSpec(name="local", where="amount > @limit"),
            r"evaluation\.slices 'local': where 'amount > @limit': local variables",
        ),
        (
            SliceSpec(name="by_ghost", by="region"),
            r"evaluation\.slices 'by_ghost': by column 'region' is not in the holdout",
        ),
    ],
)
def test_bad_slice_names_the_slice_and_expression(trained, config, slice_, message):
    spec = fast_evaluation(config, golden_set=None, slices=[slice_])
    with pytest.raises(BadInputError, match=message):
        evaluation.evaluate_model(trained["model"], trained["holdout"], spec, None)


def test_expanded_slice_names_must_not_collide(trained, config):
    spec = fast_evaluation(
        config,
        golden_set=None,
        slices=[
            SliceSpec(name="channel_pos", where="amount > 1"),
            SliceSpec(name="channel", by="channel"),
        ],
    )
    with pytest.raises(BadInputError, match=r"slice name 'channel_pos' is produced twice"):
        evaluation.evaluate_model(trained["model"], trained["holdout"], spec, None)


def test_by_slice_names_are_slugged_and_nulls_get_a_slice():
    holdout = pd.DataFrame({"kind": ["Gift Card", "gift-card2", None, "A"]})
    out = evaluation.resolve_slices(holdout, [SliceSpec(name="k", by="kind")])
    assert [(n, w, m.tolist()) for n, w, m in out] == [
        ("k_a", "kind == 'A'", [False, False, False, True]),
        ("k_gift_card", "kind == 'Gift Card'", [True, False, False, False]),
        ("k_gift_card2", "kind == 'gift-card2'", [False, True, False, False]),
        ("k_null", "kind.isna()", [False, False, True, False]),
    ]


# ---------------------------------------------------------------------------- fairness


def _hand_group_metrics(y, pred):
    tp = int(((y == 1) & (pred == 1)).sum())
    return {
        "rows": len(y),
        "recall": tp / (y == 1).sum() if (y == 1).any() else None,
        "precision": tp / (pred == 1).sum() if (pred == 1).any() else None,
        "selection_rate": float(pred.mean()),
    }


def test_fairness_matches_a_hand_computation(trained, config):
    holdout = trained["holdout"]
    spec = fast_evaluation(config, golden_set=None, slices=[], fairness=["group"])
    fair = evaluation.evaluate_model(trained["model"], holdout, spec, None)["fairness"]["group"]
    y, proba = _scores(trained)
    pred = (proba >= spec.threshold).astype(int)
    groups = holdout["group"].to_numpy()
    hand = {g: _hand_group_metrics(y[groups == g], pred[groups == g]) for g in ("A", "B", "C")}
    assert set(fair["by_group"]) == {"A", "B", "C"}
    for g, expected in hand.items():
        got = fair["by_group"][g]
        assert got["rows"] == expected["rows"] == int((groups == g).sum())
        for m in ("recall", "precision", "selection_rate"):
            assert got[m] == pytest.approx(expected[m], abs=1e-6), (g, m)
    rates = [hand[g]["selection_rate"] for g in hand]
    assert fair["disparate_impact"] == pytest.approx(min(rates) / max(rates), abs=1e-6)
    for m in ("recall", "precision", "selection_rate"):
        values = [hand[g][m] for g in hand]
        assert fair["max_gap"][m] == pytest.approx(max(values) - min(values), abs=1e-6), m
    assert fair["note"] is None


def test_fairness_leaves_small_groups_out_of_gaps(trained, config):
    holdout = trained["holdout"]
    counts = holdout["group"].value_counts()
    assert counts["C"] < 100 < counts["B"]
    spec = fast_evaluation(config, golden_set=None, slices=[], min_slice_rows=100)
    fair = evaluation.evaluate_model(trained["model"], holdout, spec, None)["fairness"]["group"]
    assert fair["by_group"]["C"] == {
        "rows": int(counts["C"]),
        "recall": None,
        "precision": None,
        "selection_rate": None,
    }
    _, proba = _scores(trained)
    pred, groups = proba >= spec.threshold, holdout["group"].to_numpy()
    a, b = pred[groups == "A"].mean(), pred[groups == "B"].mean()
    assert fair["disparate_impact"] == pytest.approx(min(a, b) / max(a, b), abs=1e-6)
    assert fair["max_gap"]["selection_rate"] == pytest.approx(abs(a - b), abs=1e-6)
    share = counts["C"] / len(holdout)
    assert fair["note"].startswith(
        f"{counts['C']} of {len(holdout)} rows ({share:.0%}) are in 1 group(s) of fewer than 100"
    )
    assert fair["note"].endswith("left out of max_gap and disparate_impact: C")
    assert fair["rows_left_out"] == counts["C"]


def test_fairness_warns_with_the_share_of_rows_left_out(trained, config, capsys):
    spec = fast_evaluation(config, golden_set=None, slices=[], min_slice_rows=100)
    evaluation.evaluate_model(trained["model"], trained["holdout"], spec, None)
    err = capsys.readouterr().err
    assert "conveyor: warning: fairness across 'group': " in err
    assert "rows (" in err and "evaluation.min_slice_rows" in err


def test_a_numeric_column_of_many_values_is_grouped_in_quantile_bins():
    rng = np.random.default_rng(3)
    age = pd.Series(rng.integers(18, 90, 2000), name="age")
    y = rng.integers(0, 2, 2000)
    pred = (age.to_numpy() > 50).astype(int)  # selection depends on age
    fair = evaluation.group_fairness(age, y, pred, min_rows=30)
    assert len(fair["bins"]) == 3  # the default: quartiles
    first, *_, last = fair["by_group"]
    assert list(fair["by_group"]) == [
        f"< {fair['bins'][0]:g}",
        f"{fair['bins'][0]:g} to {fair['bins'][1]:g}",
        f"{fair['bins'][1]:g} to {fair['bins'][2]:g}",
        f">= {fair['bins'][2]:g}",
    ]
    assert sum(g["rows"] for g in fair["by_group"].values()) == 2000
    for rows in (g["rows"] for g in fair["by_group"].values()):
        assert 400 <= rows <= 600  # quantile bins hold about a quarter each
    assert fair["by_group"][first]["selection_rate"] == 0.0
    assert fair["by_group"][last]["selection_rate"] == 1.0
    assert fair["disparate_impact"] == 0.0
    assert fair["note"] is None


def test_fairness_bins_by_edges_and_nulls_last():
    age = pd.Series([17, 30, 30, 45, 70, None, 64, 25], name="age")
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    fair = evaluation.group_fairness(age, y, y, min_rows=1, bins=[25, 40, 65])
    assert {g: v["rows"] for g, v in fair["by_group"].items()} == {
        "< 25": 1, "25 to 40": 3, "40 to 65": 2, ">= 65": 1, "null": 1,
    }  # fmt: skip
    with pytest.raises(BadInputError, match=r"fairness_bins\.sex: column 'sex' is object"):
        evaluation.group_fairness(pd.Series(["F", "M"], name="sex"), y[:2], y[:2], 1, bins=3)


def test_groups_sort_as_a_person_reads_them():
    values = pd.Series([9.0, 20.0, 9.0, 100.0, 20.0, None], name="n")  # few values: not binned
    fair = evaluation.group_fairness(values, np.ones(6), np.ones(6), min_rows=1)
    assert list(fair["by_group"]) == ["9.0", "20.0", "100.0", "null"]
    names = ["grade 10", "grade 2", "Grade 1", "b", "a"]
    assert sorted(names, key=evaluation.natural_key) == ["a", "b", "Grade 1", "grade 2", "grade 10"]


def test_fairness_bins_are_checked_at_load(config):
    from pydantic import ValidationError

    from conveyor.config import EvaluationSpec

    for bins, message in [
        ({"age": 3}, "'age' is not listed in evaluation.fairness"),
        ({"sex": 1}, "1 bins; between 2 and 20"),
        ({"sex": [30, 20]}, "must increase strictly"),
        ({"sex": []}, "must be finite numbers, at least one"),
    ]:
        with pytest.raises(ValidationError, match=message):
            EvaluationSpec(fairness=["sex"], fairness_bins=bins)


def test_fairness_edge_cases_are_null_not_nan():
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.zeros(6, dtype=int)  # nobody selected: disparate impact undefined
    groups = pd.Series(["x", "x", "x", "y", "y", "y"])
    fair = evaluation.group_fairness(groups, y, pred, min_rows=1)
    assert fair["disparate_impact"] is None
    assert fair["by_group"]["x"]["recall"] is None  # no positives in x
    assert fair["max_gap"]["recall"] is None  # only one group has a recall
    assert fair["max_gap"]["selection_rate"] == 0.0
    json.dumps(fair, allow_nan=False)


def test_missing_fairness_column_is_named(trained, config):
    spec = fast_evaluation(config, golden_set=None, fairness=["region"])
    with pytest.raises(BadInputError, match=r"evaluation\.fairness: column 'region' is not in"):
        evaluation.evaluate_model(trained["model"], trained["holdout"], spec, None)


# ----------------------------------------------------------------------- latency, model


def test_latency_and_memory_are_measured(trained, config):
    spec = fast_evaluation(config, golden_set=None)
    block = evaluation.evaluate_model(trained["model"], trained["holdout"], spec, None)
    lat = block["latency_ms"]
    assert set(lat) == {
        "p50", "p95", "p99", "single_calls", "batch_p50", "batch_p95", "batch_p99",
        "batch_rows", "batch_calls",
    }  # fmt: skip
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert 0 < lat["batch_p50"] <= lat["batch_p95"] <= lat["batch_p99"]
    assert (lat["single_calls"], lat["batch_rows"], lat["batch_calls"]) == (20, 200, 5)
    model = block["model"]
    assert model["size_bytes"] == (trained["model"] / "model.joblib").stat().st_size
    assert model["estimator"] == "HistGradientBoostingClassifier"
    # a 200-row batch through the preprocessing allocates at least its ~80 float columns
    assert 200 * 80 * 8 / 2**20 < model["batch_peak_memory_mb"] < 500


def test_batch_longer_than_the_holdout_repeats_rows(trained, config):
    x = trained["holdout"].head(7)
    model, spec = model_files.load_model(trained["model"])
    latency = fast_evaluation(config).latency.model_copy(update={"batch_rows": 50})
    lat = evaluation.measure_latency(model, model_files.inputs(x, spec), latency)
    assert lat["batch_rows"] == 50 and lat["single_calls"] == 20


# ------------------------------------------------------------------------------ sanity


def test_collapsed_model_is_flagged(trained, config, collapsed_model):
    spec = fast_evaluation(config, golden_set=None)
    golden = evaluation.load_golden(GOLDEN)
    block = evaluation.evaluate_model(collapsed_model, trained["holdout"], spec, golden)
    assert block["sanity"]["majority_class_share"] == 1.0
    assert block["sanity"]["collapsed"] is True
    assert block["metrics"]["majority_class_share"] == 1.0
    assert block["metrics"]["predicted_positive_rate"] == 0.0
    assert block["metrics"]["precision"] is None  # never predicts positive
    assert block["metrics"]["roc_auc"] == 0.5
    fraud_rows = int(golden["expected_prediction"].sum())
    assert block["sanity"]["golden_agreement"] == pytest.approx(1 - fraud_rows / len(golden))
    json.dumps(block, allow_nan=False)


def test_trained_model_is_not_collapsed(trained, config):
    spec = fast_evaluation(config, golden_set=None)
    block = evaluation.evaluate_model(trained["model"], trained["holdout"], spec, None)
    _, proba = _scores(trained)
    pred = proba >= 0.5
    assert block["sanity"]["collapsed"] is False
    assert block["sanity"]["majority_class_share"] == round(max(pred.mean(), 1 - pred.mean()), 6)
    assert block["sanity"]["golden_agreement"] is None
    assert block["metrics"]["golden_agreement"] is None
    assert (block["sanity"]["golden_rows"], block["sanity"]["golden_version"]) == (0, None)


def test_golden_set_is_reproduced_by_the_trained_model(trained, config):
    golden = evaluation.load_golden(GOLDEN)
    assert 20 <= len(golden) <= 40
    assert set(golden["expected_prediction"]) == {0, 1}
    spec = fast_evaluation(config, golden_set=None)
    block = evaluation.evaluate_model(trained["model"], trained["holdout"], spec, golden)
    assert block["sanity"]["golden_agreement"] == 1.0
    assert block["metrics"]["golden_agreement"] == 1.0
    assert block["sanity"]["golden_rows"] == len(golden)
    assert block["sanity"]["golden_version"] == "golden_v1"
    assert block["sanity"]["golden_mismatched_rows"] == []


def test_flipped_golden_rows_lower_agreement(trained, config, tmp_path):
    golden = pd.read_csv(GOLDEN)
    golden.loc[[0, 5, 9], "expected_prediction"] = 1 - golden.loc[[0, 5, 9], "expected_prediction"]
    path = tmp_path / "golden_v2.csv"
    golden.to_csv(path, index=False)
    spec = fast_evaluation(config, golden_set=None)
    result = evaluation.evaluate(trained["model"], trained["prep"].holdout, spec, str(path))
    assert result["sanity"]["golden_agreement"] == pytest.approx(1 - 3 / len(golden), abs=1e-6)
    assert result["sanity"]["golden_mismatched_rows"] == [0, 5, 9]
    assert result["sanity"]["golden_version"] == "golden_v2"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda g: g.drop(columns=["expected_prediction"]),
            r"lacks column\(s\) \['expected_prediction'\]",
        ),
        (lambda g: g.drop(columns=["label"]), r"lacks column\(s\) \['label'\]"),
        (
            lambda g: g.assign(expected_prediction=2),
            r"'expected_prediction' must be 0 or 1, got \['2'\]",
        ),
        (lambda g: g.head(0), "golden set has no rows"),
        (
            lambda g: g.drop(columns=["amount", "channel"]),
            r"lacks model input column\(s\) \['amount', 'channel'\]",
        ),
    ],
)
def test_invalid_golden_set_names_the_path_and_problem(trained, config, tmp_path, edit, message):
    path = tmp_path / "golden_bad.csv"
    edit(pd.read_csv(GOLDEN)).to_csv(path, index=False)
    spec = fast_evaluation(config, golden_set=None)
    with pytest.raises(BadInputError, match=message) as err:
        evaluation.evaluate(trained["model"], trained["prep"].holdout, spec, str(path))
    assert str(path) in str(err.value)


def test_missing_golden_file_and_unresolved_golden_set(trained, config, tmp_path):
    spec = fast_evaluation(config)
    with pytest.raises(BadInputError, match=r"nope\.csv: golden set file not found"):
        evaluation.evaluate(
            trained["model"], trained["prep"].holdout, spec, str(tmp_path / "nope.csv")
        )
    with pytest.raises(BadInputError, match=r"evaluation\.golden_set is 'golden_v1\.csv' but no"):
        evaluation.evaluate(trained["model"], trained["prep"].holdout, spec)


def test_golden_records_round_trip_for_the_component(tmp_path):
    text = evaluation.golden_records_json(GOLDEN)
    assert "\n" not in text and "NaN" not in text
    path = evaluation.golden_from_records(text, "golden_v1", tmp_path)
    assert Path(path).name == "golden_v1.csv"
    pd.testing.assert_frame_equal(evaluation.load_golden(path), evaluation.load_golden(GOLDEN))
    assert evaluation.golden_from_records("[]", "", tmp_path) is None
    with pytest.raises(BadInputError, match=r"golden_set \(golden_v1\): expected a JSON list"):
        evaluation.golden_from_records('{"a": 1}', "golden_v1", tmp_path)


def test_component_inputs_for_the_pipeline(config):
    inputs = evaluation.component_inputs(
        config.evaluation, config.resolve(config.evaluation.golden_set)
    )
    assert set(inputs) == {"evaluation_spec", "golden_set", "golden_set_version"}
    spec = json.loads(inputs["evaluation_spec"])
    assert "golden_set" not in spec
    assert spec["slices"][0] == {"name": "high_value", "where": "amount >= 1000", "by": None}
    assert len(json.loads(inputs["golden_set"])) == len(pd.read_csv(GOLDEN))
    assert inputs["golden_set_version"] == "golden_v1"
    none = evaluation.component_inputs(
        config.evaluation.model_copy(update={"golden_set": None}), None
    )
    assert (none["golden_set"], none["golden_set_version"]) == ("[]", "")


# ---------------------------------------------------------------------------- champion


def test_champion_is_scored_on_the_same_holdout(trained, config, champion):
    spec = fast_evaluation(config)
    golden_path = config.resolve(config.evaluation.golden_set)
    holdout_path = trained["prep"].holdout
    both = evaluation.evaluate(trained["model"], holdout_path, spec, golden_path, champion)
    alone = evaluation.evaluate(champion, holdout_path, spec, golden_path)
    champ = both["champion"]
    assert set(champ) == set(alone) - {"threshold", "holdout", "champion"}
    assert both["holdout"] == alone["holdout"]
    assert champ["metrics"]["rows"] == both["metrics"]["rows"] == both["holdout"]["rows"]
    assert champ["model"]["estimator"] == "LogisticRegression"
    assert champ["model"]["sha256"] != both["model"]["sha256"]
    # everything but timing and memory is a pure function of model + holdout
    for key in ("metrics", "slices", "fairness", "sanity", "confusion_matrix", "roc"):
        assert champ[key] == alone[key], key
    assert champ["metrics"] != both["metrics"]


def test_report_puts_candidate_and_champion_side_by_side(tmp_path, trained, config, champion):
    spec = fast_evaluation(config)
    result = evaluate.run(
        trained["model"],
        trained["prep"].holdout,
        spec,
        tmp_path / "evaluation.json",
        tmp_path / "report.md",
        golden_path=config.resolve(config.evaluation.golden_set),
        champion_dir=champion,
    ).evaluation
    report = (tmp_path / "report.md").read_text()
    assert "| metric | candidate | champion | delta |" in report
    cand, champ = result["metrics"]["roc_auc"], result["champion"]["metrics"]["roc_auc"]
    assert f"| roc_auc | {cand:.4f} | {champ:.4f} | {cand - champ:+.4f} |" in report
    assert "| latency | candidate | champion | delta |" in report
    assert "| collapsed | no | no |  |" in report


def test_champion_with_a_tampered_model_is_refused(tmp_path, trained, config, champion):
    import shutil

    bad = tmp_path / "champion"
    shutil.copytree(champion, bad)
    (bad / "model.joblib").write_bytes((bad / "model.joblib").read_bytes() + b"x")
    spec = fast_evaluation(config, golden_set=None)
    with pytest.raises(ConveyorError, match=r"does not match model\.sha256"):
        evaluation.evaluate(trained["model"], trained["prep"].holdout, spec, champion_dir=bad)


@pytest.mark.parametrize("threads", [1, 2])
def test_latency_is_timed_with_the_serving_runtimes_threads(threads):
    """OpenMP's default (a thread per core) made a single-row predict 17-71 ms instead of
    0.6 ms here; the gate must see what the runtime (OMP_NUM_THREADS = CPU limit) serves."""
    from threadpoolctl import threadpool_info

    from conveyor.config import LatencySpec

    seen: list[int] = []

    class Probe:
        def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
            seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp")
            return np.zeros((len(x), 2))

    spec = LatencySpec(single_calls=3, batch_rows=4, batch_calls=2, warmup=1, threads=threads)
    lat = evaluation.measure_latency(Probe(), pd.DataFrame({"a": [1.0, 2.0]}), spec)  # type: ignore[arg-type]
    assert lat["single_calls"] == 3
    assert seen and set(seen) == {threads}


def test_metric_paths_are_exactly_the_numbers_an_evaluation_holds(trained, config):
    """validate-config checks gate rules against metric_paths: it must list every number an
    evaluation writes (so no valid rule is refused) and nothing it does not (so a typo is
    caught)."""
    import fnmatch

    spec = fast_evaluation(
        config, golden_set=None, min_slice_rows=1, fairness=["group"],
        slices=[SliceSpec(name="cheap", where="amount < 20"),
                SliceSpec(name="card", by="card_type")],
    )  # fmt: skip
    block = evaluation.evaluate(trained["model"], trained["prep"].holdout, spec)

    def numbers(node, path=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from numbers(v, f"{path}.{k}" if path else k)
        elif node is None or (isinstance(node, int | float) and not isinstance(node, bool)):
            yield path  # null: a number this data left undefined (no golden set, one class)

    echoes = ("roc", "confusion_matrix", "champion", "threshold")  # plots, the champion, config
    written = set(numbers({k: v for k, v in block.items() if k not in echoes}))
    written -= {p for p in written if p.endswith((".note", ".where", ".bins", "golden_version"))}
    written -= {
        p for p in written if p.startswith("latency_ms.") and p.endswith(("_calls", "rows"))
    }
    patterns = evaluation.metric_paths(spec)
    assert [p for p in written if not any(fnmatch.fnmatchcase(p, q) for q in patterns)] == []
    assert [q for q in patterns if not any(fnmatch.fnmatchcase(p, q) for p in written)] == []
    assert evaluation.unknown_metric("slices.card_debit.metrics.recall", spec) is None
    assert "did you mean 'metrics.recall'" in evaluation.unknown_metric("metrics.recal", spec)
