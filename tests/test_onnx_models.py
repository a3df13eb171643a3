"""CNNs (PyTorch, an optional extra) and IMPORT MODEL of ONNX files made by skl2onnx and torch."""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import pyarrow as pa
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sqlml
from sqlml.errors import BindError

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (pip install 'sqlml[torch]')"
)


@pytest.fixture
def con(tmp_path):
    return sqlml.connect(catalog=str(tmp_path / "catalog"))


def digits_table() -> tuple[pa.Table, np.ndarray, np.ndarray]:
    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    test = np.random.default_rng(0).random(len(d.target)) < 0.2
    pixels = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 64)
    return pa.table({"id": np.arange(len(x)), "pixels": pixels, "digit": d.target, "test": test}), x, test


@needs_torch
@pytest.mark.slow
def test_cnn_predicts_as_the_pytorch_model_did(con):
    from sqlml.models import cnn, get

    digits, x, test = digits_table()
    con.sql("TRAIN MODEL cnn USING cnn_classifier LABEL digit WITH (epochs = 2, embedding_size = 16, validation = 0) "
            "AS SELECT pixels, digit FROM digits WHERE NOT test ORDER BY id")  # fmt: skip
    # the same network trained by PyTorch directly on the same rows, in the same order
    params = get("cnn_classifier").params_for({"epochs": 2, "embedding_size": 16}, 10)
    net = cnn.fit_network(x[~test], load_digits().target[~test], None, 10, params)
    import torch

    with torch.no_grad():
        probabilities, embedding = (t.numpy() for t in net(torch.from_numpy(x[test])))
    rows = con.sql("SELECT map_values(probabilities), embedding, typeof(embedding) "
                   "FROM PREDICT(MODEL cnn, (SELECT * FROM digits WHERE test ORDER BY id))").fetchall()  # fmt: skip
    np.testing.assert_allclose(np.array([r[0] for r in rows]), probabilities, atol=1e-5)
    np.testing.assert_allclose(np.array([r[1] for r in rows]), embedding, atol=1e-4, rtol=1e-5)
    assert rows[0][2] == "DOUBLE[16]"


@needs_torch
@pytest.mark.slow
def test_cnn_reaches_098_on_digits_and_its_embedding_feeds_lightgbm(con):
    digits, _, _ = digits_table()  # noqa: F841 (DuckDB reads it by name)
    con.sql("TRAIN MODEL cnn USING cnn_classifier LABEL digit WITH (validation = 0) "
            "AS SELECT pixels, digit FROM digits WHERE NOT test")  # fmt: skip
    row = con.sql("EVALUATE MODEL cnn ON (SELECT * FROM digits WHERE test)")
    assert dict(zip(row.columns, row.fetchone()))["accuracy"] >= 0.98
    con.sql("TRAIN MODEL on_embedding USING lightgbm_classifier LABEL digit WITH (num_threads = 1) "
            "AS SELECT digit, embedding FROM PREDICT(MODEL cnn, (SELECT * FROM digits WHERE NOT test))")  # fmt: skip
    row = con.sql("EVALUATE MODEL on_embedding ON (SELECT digit, embedding FROM PREDICT(MODEL cnn, "
                  "(SELECT * FROM digits WHERE test)))").fetchone()  # fmt: skip
    assert row[3] >= 0.97


def test_cnn_without_pytorch_names_the_extra(con, tmp_path):
    """Run in a process where torch cannot be imported."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['torch'] = None\n"
        "import importlib.util, sqlml\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'torch' else __import__('importlib').machinery."
        "PathFinder.find_spec(name)\n"
        f"con = sqlml.connect(catalog={str(tmp_path)!r})\n"
        "con.sql('CREATE TABLE t AS SELECT [1.0, 2.0, 3.0, 4.0]::FLOAT[4] AS v, 1 AS y')\n"
        "try:\n    con.sql('TRAIN MODEL m USING cnn_classifier LABEL y AS SELECT * FROM t')\n"
        "except sqlml.SqlmlError as err:\n    print(err.message, err.span.col)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "pip install 'sqlml[torch]'" in out and out.strip().endswith(" 21"), out


def breast_cancer() -> tuple[pa.Table, np.ndarray, np.ndarray, list[str]]:
    data = load_breast_cancer()
    names = [f"f{i}" for i in range(data.data.shape[1])]
    table = pa.table({"id": np.arange(len(data.target)), **dict(zip(names, data.data.T)), "y": data.target})
    return table, data.data, data.target, names


def test_import_scikit_learn_pipeline_predicts_as_the_original(con, tmp_path):
    cancer, x, y, names = breast_cancer()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    onx = to_onnx(pipeline, initial_types=[("x", FloatTensorType([None, 30]))],
                  options={id(pipeline[-1]): {"zipmap": False}})  # fmt: skip
    path = tmp_path / "cancer.onnx"
    path.write_bytes(onx.SerializeToString())
    con.sql(f"IMPORT MODEL cancer FROM '{path}' WITH (classes = [0, 1], inputs = {names}, label = 'y', "
            "output = 'probabilities')")  # fmt: skip
    got = np.array(con.sql("SELECT probability FROM PREDICT(MODEL cancer, TABLE cancer) ORDER BY id").fetchall())
    np.testing.assert_allclose(got[:, 0], pipeline.predict_proba(x)[:, 1], atol=1e-4)
    row = con.sql("EVALUATE MODEL cancer ON TABLE cancer")
    auc = dict(zip(row.columns, row.fetchone()))["auc"]
    from sklearn.metrics import roc_auc_score

    assert auc == pytest.approx(roc_auc_score(y, pipeline.predict_proba(x)[:, 1]), abs=1e-6)
    shown = con.sql("SHOW MODELS").fetchall()
    assert shown[0][:4] == ("cancer", 1, "onnx_import", "binary")
    described = {n: v for s, n, v in con.sql("DESCRIBE MODEL cancer").fetchall()}
    assert described["source"] == str(path.resolve())
    with pytest.raises(BindError, match="imported ONNX model"):
        con.sql("TRAIN MODEL cancer USING logistic_classifier LABEL y AS SELECT * FROM cancer")


def _external(tmp_path, weights: np.ndarray, location: str = "weights.data", remove: bool = False,
              truncate: bool = False) -> str:  # fmt: skip
    """x @ weights with the weights in a file beside the model (ONNX external data), as
    torch.onnx.export writes by default."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, len(weights)])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(weights.astype(np.float32).reshape(-1, 1), "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "external.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="weights.data", size_threshold=0)
    if remove:
        (tmp_path / "weights.data").unlink()
    if truncate:
        (tmp_path / "weights.data").write_bytes(b"\x00\x00\x80")
    if location != "weights.data":
        model = onnx.load_model(str(path), load_external_data=False)
        model.graph.initializer[0].external_data[0].value = location
        path.write_bytes(model.SerializeToString())
    return str(path)


def test_import_reads_the_weights_kept_beside_the_model(con, tmp_path):
    """The catalog's copy holds them: the model predicts after its weights file is gone."""
    weights = np.random.default_rng(3).normal(size=5)
    path = _external(tmp_path, weights)
    con.sql(f"IMPORT MODEL ext FROM '{path}' WITH (inputs = ['a', 'b', 'c', 'd', 'e'])")
    (tmp_path / "weights.data").unlink()
    x = np.random.default_rng(4).normal(size=(50, 5))
    rows = pa.table({name: x[:, i] for i, name in enumerate("abcde")} | {"id": np.arange(50)})  # noqa: F841
    again = sqlml.connect(catalog=str(tmp_path / "catalog"))
    got = np.array(again.sql("SELECT prediction FROM PREDICT(MODEL ext, TABLE rows) ORDER BY id").fetchall())[:, 0]
    np.testing.assert_allclose(got, x.astype(np.float32) @ weights.astype(np.float32), rtol=1e-5, atol=1e-5)


def _fixed_batch(tmp_path, batch: int, baked: bool = False) -> str:
    """x @ [1, 2, 3] for batches of exactly `batch` rows; `baked`: reshaped to (batch, -1) first,
    so that a larger batch is scored wrongly."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["r" if baked else "x", "w"], ["y"])]
    constants = [numpy_helper.from_array(np.array([[1.0], [2.0], [3.0]], dtype=np.float32), "w"),
                 numpy_helper.from_array(np.array([batch, -1]), "shape")]  # fmt: skip
    if baked:
        nodes.insert(0, helper.make_node("Reshape", ["x", "shape"], ["r"]))
    graph = helper.make_graph(
        nodes, "fixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 1])], constants,
    )  # fmt: skip
    path = tmp_path / "fixed.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    return str(path)


def _logits(tmp_path, bias: tuple[float, ...] = (0.5, 2.0), sigmoid: bool = False) -> str:
    """A classifier's scores before the softmax, x @ w + bias, or with a sigmoid after them."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["logits"])]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["p"]))
    weights = np.array([[0.5, -1.0, 2.0]] * len(bias), dtype=np.float32).T
    graph = helper.make_graph(
        nodes, "logits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("p" if sigmoid else "logits", TensorProto.FLOAT, [None, len(bias)])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array(bias, dtype=np.float32), "b")],
    )  # fmt: skip
    path = tmp_path / "logits.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    return str(path)


def test_import_binary_classifier_with_one_sigmoid_column(con, tmp_path):
    """Its one column is the second class's probability, as a binary classifier's PREDICT shows it."""
    from sklearn.metrics import roc_auc_score

    path = _logits(tmp_path, bias=(0.25,), sigmoid=True)
    con.sql(f"IMPORT MODEL s FROM '{path}' WITH (classes = ['no', 'yes'], inputs = ['a', 'b', 'c'], label = 'y')")
    x = np.random.default_rng(5).normal(size=(300, 3))
    y = np.where(np.random.default_rng(6).random(300) < 0.5, "yes", "no")
    rows = pa.table({"id": np.arange(300), "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})  # noqa: F841
    got = con.sql("SELECT probability, prediction FROM PREDICT(MODEL s, TABLE rows) ORDER BY id").fetchall()
    expected = 1 / (1 + np.exp(-(x.astype(np.float32) @ np.array([0.5, -1.0, 2.0], dtype=np.float32) + 0.25)))
    np.testing.assert_allclose([p for p, _ in got], expected, atol=1e-6)
    assert [label for _, label in got] == ["yes" if p >= 0.5 else "no" for p in expected]
    row = con.sql("EVALUATE MODEL s ON TABLE rows")
    assert dict(zip(row.columns, row.fetchone()))["auc"] == pytest.approx(roc_auc_score(y == "yes", expected))


@pytest.mark.parametrize("batch", [1, 4])
def test_import_frees_a_fixed_batch_axis(con, tmp_path, batch):
    path = _fixed_batch(tmp_path, batch)
    con.sql(f"IMPORT MODEL fixed FROM '{path}' WITH (inputs = ['a', 'b', 'c'])")
    got = con.sql("SELECT sum(prediction), count(*) FROM PREDICT(MODEL fixed, "
                  "(SELECT i::DOUBLE AS a, 1.0 AS b, -1.0 AS c FROM range(5000) t(i)))").fetchall()  # fmt: skip
    assert got == [(sum(range(5000)) - 5000, 5000)]


@needs_torch
@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic batch", "batch of 1"])
def test_import_torch_cnn_takes_a_vector_column(con, tmp_path, dynamic):
    """Exported without dynamic axes (torch.onnx.export's default), the graph takes one row at a
    time: IMPORT frees its batch axis once it has checked that rows score alike in a batch."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10), nn.Softmax(dim=1))
    buffer = io.BytesIO()
    axes = {"dynamic_axes": {"image": {0: "rows"}, "p": {0: "rows"}}} if dynamic else {}
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated (the new one needs onnxscript)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), buffer, input_names=["image"], output_names=["p"],
                          dynamo=False, **axes)  # fmt: skip
    path = tmp_path / "cnn.onnx"
    path.write_bytes(buffer.getvalue())
    digits, x, _ = digits_table()
    con.sql(f"IMPORT MODEL cnn FROM '{path}' WITH (classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], inputs = 'pixels')")
    with pytest.raises(BindError, match="no label column"):
        con.sql("EVALUATE MODEL cnn ON TABLE digits")
    got = np.array([r[0] for r in con.sql("SELECT map_values(probabilities) FROM PREDICT(MODEL cnn, TABLE digits) "
                                          "ORDER BY id").fetchall()])  # fmt: skip
    with torch.no_grad():
        expected = net(torch.from_numpy(x).reshape(-1, 1, 8, 8)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def _onnx(tmp_path, name: str, input_type: object, zipmap: bool = False) -> str:
    x, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=2000).fit(x[:, :4], y)
    onx = to_onnx(model, initial_types=[("x", input_type)], options={id(model): {"zipmap": zipmap}})
    path = tmp_path / name
    path.write_bytes(onx.SerializeToString())
    return str(path)


def _two_inputs(tmp_path) -> str:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("a", "b")],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [None, 1])],
    )  # fmt: skip
    path = tmp_path / "two.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    return str(path)


@pytest.mark.parametrize(
    ("make", "options", "message", "at"),
    [
        (lambda tmp: str(tmp / "missing.onnx"), "", "Cannot read model file", "'"),
        (lambda tmp: (tmp / "t.onnx").write_text("not a model") and str(tmp / "t.onnx"), "", "not an ONNX model", "'"),
        (lambda tmp: _onnx(tmp, "i.onnx", Int64TensorType([None, 4])), "classes = [0, 1]", "tensor(int64)", "'"),
        (lambda tmp: _onnx(tmp, "u.onnx", FloatTensorType([None, None])), "classes = [0, 1]", "shape", "'"),
        (lambda tmp: _onnx(tmp, "c.onnx", FloatTensorType([None, 4])), "inputs = ['a', 'b', 'c', 'd']",
         "needs its classes", "'"),
        (lambda tmp: _onnx(tmp, "k.onnx", FloatTensorType([None, 4])), "task = 'classification', inputs = 'v'",
         "needs its classes", "'"),
        (lambda tmp: _onnx(tmp, "w.onnx", FloatTensorType([None, 4])), "classes = [0, 1], inputs = ['a', 'b']",
         "takes 4 inputs", "["),
        (lambda tmp: _onnx(tmp, "z.onnx", FloatTensorType([None, 4]), zipmap=True),
         "classes = [0, 1], output = 'output_probability', inputs = 'v'", "ZipMap", "'"),
        (_two_inputs, "", "has 2 inputs", "'"),
        (_logits, "classes = ['no', 'yes'], inputs = ['a', 'b', 'c']", "does not hold probabilities: a row of zeros "
         "scores [0.5, 2], which sum to 2.5", "'"),
        (lambda tmp: _logits(tmp, bias=(2.0,)), "classes = [0, 1], inputs = ['a', 'b', 'c'], output = 'logits'",
         "does not hold probabilities: a row of zeros scores [2].", "'"),
        (lambda tmp: _logits(tmp, bias=(0.1,), sigmoid=True), "classes = [0, 1, 2], inputs = ['a', 'b', 'c']",
         "has 1 columns, but 3 classes were given", "["),
        (lambda tmp: _fixed_batch(tmp, 1, baked=True), "inputs = ['a', 'b', 'c']", "batches of exactly 1 row", "'"),
        (lambda tmp: _external(tmp, np.ones(3), remove=True), "", "keeps weights in a file beside it", "'"),
        (lambda tmp: _external(tmp, np.ones(3), "../../etc/passwd"), "", "points outside the directory", "'"),
        (lambda tmp: _external(tmp, np.ones(3), truncate=True), "", "cannot be read: External data length (12)", "'"),
        (lambda tmp: _onnx(tmp, "o.onnx", FloatTensorType([None, 4])), "classes = [0, 1], clases = 1",
         "Did you mean 'classes'", "c"),
    ],
)  # fmt: skip
def test_bad_imports_are_positioned_and_change_nothing(con, tmp_path, make, options, message, at):
    path = make(tmp_path)
    with_ = f" WITH ({options})" if options else ""
    statement = f"IMPORT MODEL m FROM '{path}'{with_}"
    with pytest.raises(BindError) as info:
        con.sql(statement)
    assert message in str(info.value), str(info.value)
    span = info.value.span
    assert span is not None and statement[span.start] == at, (statement, span)
    assert con.sql("SHOW MODELS").fetchall() == []
