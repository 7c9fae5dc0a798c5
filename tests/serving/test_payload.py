"""Request bodies to model rows: every accepted shape gives the same rows, every client mistake
is a BadInputError naming the field, the value and what was expected."""

import math

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import BadInputError
from conveyor.serving.payload import Features, Tensor, from_v1, from_v2

pytestmark = pytest.mark.unit

FEATURES = Features(
    numeric=["amount", "age"],
    categorical=["merchant", "tier"],
    categories={"merchant": ["grocery", "travel", "__missing__"], "tier": ["1", "2", "3"]},
    max_batch=5,
)
ROWS = [
    {"amount": 12.5, "age": 30, "merchant": "grocery", "tier": 1},
    {"amount": None, "age": "41", "merchant": None, "tier": "2"},
]


def _expected() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [12.5, math.nan],
            "age": [30.0, 41.0],
            "merchant": pd.Series(["grocery", np.nan], dtype=object),
            "tier": pd.Series([1, "2"], dtype=object),
        }
    )


def _tensor(name: str, datatype: str, data: list, shape: list | None = None) -> Tensor:
    return Tensor(name, datatype, shape if shape is not None else [len(data)], data)


V2_GOOD = [
    _tensor("amount", "FP64", [12.5, None]),
    _tensor("age", "INT32", [30, 41]),
    _tensor("merchant", "BYTES", ["grocery", None]),
    _tensor("tier", "BYTES", [1, "2"]),
]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": ROWS},  # records
        {"inputs": ROWS},
        {"instances": [{c: [r[c] for r in ROWS] for c in ROWS[0]}]},  # columns
        {"instances": [{c: [r[c]] for c in r} for r in ROWS]},  # columns, one block per row
        {"instances": [[r[c] for c in FEATURES.order] for r in ROWS]},  # positional
        {"instances": [{**r, "id": 7, "label": 1} for r in ROWS]},  # fields that are not features
    ],
    ids=["records", "inputs", "columns", "column-blocks", "positional", "extra-fields"],
)
def test_every_v1_shape_gives_the_same_rows(body) -> None:
    rows = from_v1(body, FEATURES)
    pd.testing.assert_frame_equal(rows.frame, _expected())
    assert rows.unseen == {}


def test_v2_tensors_give_the_same_rows_flat_or_nested() -> None:
    pd.testing.assert_frame_equal(from_v2(V2_GOOD, FEATURES).frame, _expected())
    nested = [Tensor(t.name, t.datatype, [2, 1], [[v] for v in t.data]) for t in V2_GOOD]
    pd.testing.assert_frame_equal(from_v2(nested, FEATURES).frame, _expected())


def test_an_empty_batch_is_zero_rows() -> None:
    rows = from_v1({"instances": []}, FEATURES)
    assert len(rows.frame) == 0 and list(rows.frame.columns) == FEATURES.order


def test_unseen_categories_are_scored_and_counted() -> None:
    rows = from_v1({"instances": [{**ROWS[0], "merchant": "casino"}, ROWS[0]]}, FEATURES)
    assert rows.unseen == {"merchant": 1}
    assert rows.frame["merchant"].tolist() == ["casino", "grocery"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "the body is a list; a V1 request is an object"),
        ({"foo": 1}, "exactly one of \"instances\" or \"inputs\"; got ['foo']"),
        ({"instances": [], "inputs": []}, "exactly one of"),
        ({"instances": {"amount": 1}}, "instances is a dict, not a list of rows"),
        ({"instances": [1.0]}, "instances[0] is 1.0; send rows as objects"),
        ({"instances": [{"amount": 1}]}, "instances[0]: missing feature(s) ['age', 'merchant'"),
        ({"instances": [ROWS[0], [1]]}, "instances[1] is a list; every row must be an object"),
        ({"instances": [{**ROWS[0], "amount": "inf"}]}, "feature 'amount' (row 0): 'inf' is not"
                                                        " finite"),
        ({"instances": [{**ROWS[0], "amount": math.nan}]}, "'amount' (row 0): nan is not finite"),
        ({"instances": [{**ROWS[0], "age": True}]}, "feature 'age' (row 0): True is not a number"),
        ({"instances": [{**ROWS[0], "age": "old"}]}, "feature 'age' (row 0): 'old' is not a num"),
        ({"instances": [{**ROWS[0], "age": 10**400}]}, "is not a number"),
        ({"instances": [{**ROWS[0], "merchant": 3}]}, "feature 'merchant' (row 0): 3 is a number,"
                                                      " not a category; send a string such as "
                                                      "'grocery', 'travel'"),
        ({"instances": [{**ROWS[0], "merchant": True}]}, "True is a boolean, not a category"),
        ({"instances": [{**ROWS[0], "merchant": {"a": 1}}]}, "instances[0].merchant: {'a': 1} is"
                                                             " not one value"),
        ({"instances": [{**ROWS[0], "merchant": ["a"]}]}, "instances[0] mixes lists (merchant) "
                                                          "and single values (amount, age, tier)"),
        ({"instances": [{"amount": [1, 2], "age": [1], "merchant": ["a", "b"], "tier": [1, 2]}]},
         "columns of different lengths (amount 2, age 1, merchant 2, tier 2)"),
        ({"instances": [{"amount": [[1]], "age": [1], "merchant": ["a"], "tier": [1]}]},
         "instances[0].amount[0]: [1] is not one value"),
        ({"instances": [[1.0, 2.0]]}, "instances[0] has 2 values; a positional row has exactly 4,"
                                      " in this order: ['amount', 'age', 'merchant', 'tier']"),
        ({"instances": [ROWS[0]] * 6}, "batch of 6 rows exceeds the maximum 5"),
    ],
)  # fmt: skip
def test_v1_mistakes_are_named(body, message) -> None:
    with pytest.raises(BadInputError) as exc:
        from_v1(body, FEATURES)
    assert message in str(exc.value)


def _swap(feature: str, **change) -> list[Tensor]:
    return [
        Tensor(**{**t.__dict__, **change}) if t.name == feature else t for t in V2_GOOD
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "inputs must be a non-empty list of tensors"),
        ("x", "inputs must be a non-empty list"),
        (_swap("amount", datatype="FOO"), "input 'amount': datatype 'FOO' is not one of INT8"),
        (_swap("amount", shape=[3]), "input 'amount': shape [3] needs 3 values, data has 2"),
        (_swap("amount", shape=[2, 2]), "shape [2, 2]; a feature's tensor is [rows] or [rows, 1]"),
        (_swap("amount", shape=[-2]), "shape [-2]"),
        (_swap("amount", data=[1.0]), "shape [2] needs 2 values, data has 1"),
        (_swap("amount", data=[1.0], shape=[1]), "inputs of different lengths (amount 1, age 2"),
        (_swap("age", datatype="INT8", data=[100000, 1]), "input 'age': data[0] 100000 is outside"
                                                          " INT8's range -128..127"),
        (_swap("age", datatype="UINT8", data=[-1, 1]), "outside UINT8's range 0..255"),
        (_swap("age", data=[1.5, 1]), "input 'age': data[0] 1.5 is not an INT32"),
        (_swap("amount", data=[math.nan, 1.0]), "feature 'amount' (row 0): nan is not finite"),
        (_swap("amount", data=["1", 1.0]), "input 'amount': data[0] '1' is not a number"),
        (_swap("amount", data=[True, 1.0]), "input 'amount': data[0] True is not a number"),
        (_swap("amount", datatype="BYTES"), "datatype BYTES for a numeric feature"),
        (_swap("merchant", datatype="FP64", data=[1.0, 2.0]), "datatype FP64 for a categorical"),
        (_swap("merchant", data=[{"a": 1}, "b"]), "{'a': 1} in data is not a value"),
        (_swap("merchant", data="grocery"), "input 'merchant': data is a str, not a list"),
        (_swap("merchant", name=""), "an input has name ''"),
        ([*V2_GOOD, V2_GOOD[0]], "input 'amount' is given twice"),
        (V2_GOOD[1:], "missing feature(s) ['amount']"),
    ],
)  # fmt: skip
def test_v2_mistakes_are_named(inputs, message) -> None:
    with pytest.raises(BadInputError) as exc:
        from_v2(inputs, FEATURES)
    assert message in str(exc.value)


def test_a_model_trained_on_numeric_codes_takes_numbers_for_them() -> None:
    assert FEATURES.codes("tier") and not FEATURES.codes("merchant")
    rows = from_v2(_swap("tier", datatype="INT64", data=[1, 4]), FEATURES)
    assert rows.frame["tier"].tolist() == [1, 4] and rows.unseen == {"tier": 1}


CLOSED = Features(
    numeric=["amount", "age"],
    categorical=["merchant", "tier"],
    categories=FEATURES.categories,
    allowed={"merchant": ["grocery", "travel", "pharmacy"]},  # tier: open in the contract
    not_null=["age", "tier"],
)


def test_the_data_contract_has_the_last_word_on_categories_and_nulls() -> None:
    base = {"amount": None, "age": 30, "merchant": "grocery", "tier": "9"}
    rows = from_v1({"instances": [base, {**base, "merchant": "pharmacy", "tier": "2"}]}, CLOSED)
    # pharmacy: allowed but never in training -> counted; tier 9: an open column -> counted
    assert rows.unseen == {"merchant": 1, "tier": 1}
    refused = [
        ({**base, "merchant": "casino"}, "feature 'merchant' (row 0): 'casino' is not a value "
         "the data contract allows ('grocery', 'pharmacy', 'travel')"),
        ({**base, "age": None}, "feature 'age' (row 0): null, but the data contract says 'age' "
         "is never null; send a value"),
        ({**base, "tier": None}, "feature 'tier' (row 0): null, but the data contract says"),
    ]  # fmt: skip
    for row, message in refused:
        with pytest.raises(BadInputError) as exc:
            from_v1({"instances": [base, row]}, CLOSED)
        assert message.replace("(row 0)", "(row 1)") in str(exc.value)
    with pytest.raises(BadInputError, match="'casino' is not a value the data contract allows"):
        from_v2([_tensor("amount", "FP64", [1.0]), _tensor("age", "INT32", [30]),
                 _tensor("merchant", "BYTES", ["casino"]), _tensor("tier", "BYTES", ["1"])],
                CLOSED)  # fmt: skip
    # a model trained before contracts reached the server refuses nothing it did not before
    spec = {"numeric": ["amount", "age"], "categorical": ["merchant", "tier"]}
    assert Features.from_spec(spec, 10).allowed == {}
    assert list(Features.from_spec({**spec, "not_null": ["age"]}, 10).not_null) == ["age"]
