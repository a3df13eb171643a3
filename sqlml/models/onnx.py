"""Models stored as ONNX and scored with ONNX Runtime: the scikit-learn families, CNNs and
models brought in with IMPORT MODEL.

A version's metadata says which graph outputs hold what (`meta["onnx"]`): `score` (class
probabilities, a value, components, or distances to the clusters' centres, or to the
nearest one only), `label` (the cluster), `embedding` (a CNN's penultimate layer) and
`inputs` (the inputs after the model's own preprocessing, for the unsupervised metrics).
`onnxruntime` is imported on first use.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Literal

import numpy as np

from sqlml.errors import ExecutionError
from sqlml.models.affine import Affine

MODEL_FILE = "model.onnx"
IMPORTED = "onnx_import"  # the trainer named in an imported version's metadata
_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def session(data: bytes, threads: int = 0) -> Any:
    """An ONNX Runtime session on the model's bytes (`threads` intra-op threads; 0: ONNX
    Runtime's choice); a ValueError for bytes that are not a model it can run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: sqlml reports errors itself
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise ValueError(str(err).split("\n")[0]) from err


class OnnxModel:
    """An ONNX graph with one input: a float or double tensor (rows, ...) that sqlml fills
    from the feature matrix (reshaped when the graph wants an image, say (rows, 1, 8, 8))."""

    def __init__(self, data: bytes, task: str, outputs: dict[str, str]) -> None:
        self.data = data
        self.task = task
        self.outputs = outputs
        self._sessions: dict[tuple[int, tuple[str, ...]], Any] = {}  # made on first use
        self._lock = threading.RLock()
        self.info: dict[str, Any] = {}
        self.affine: Affine | None = None  # the terms an affine model's scores are computed from

    @functools.cached_property
    def input(self) -> str:
        return str(self.full_session.get_inputs()[0].name)

    @functools.cached_property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(_TYPES.get(self.full_session.get_inputs()[0].type, np.float32))

    @functools.cached_property
    def shape(self) -> list[int]:
        return [d if isinstance(d, int) else -1 for d in self.full_session.get_inputs()[0].shape[1:]]

    @property
    def input_order(self) -> Literal["C", "F"]:
        """The matrix layout PREDICT builds for it: column-major for the affine terms (a BLAS
        product takes either, and Arrow writes it in half the time), row-major for ONNX Runtime."""
        return "F" if self.affine is not None else "C"

    @property
    def width(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def input_names(self) -> None:
        return None

    def to_bytes(self) -> bytes:
        return self.data

    def __getstate__(self) -> dict[str, Any]:
        """What a Dask worker sends back of a tuning trial's model: the graph's bytes and the
        attributes, without the sessions (rebuilt from the bytes on arrival)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_sessions", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sessions, self._lock = {}, threading.RLock()

    @property
    def full_session(self) -> Any:
        """The session on the whole graph, ONNX Runtime's choice of threads, made on first use
        (a ValueError when ONNX Runtime cannot run the graph): a k-NN TRAIN without validation
        rows never needs one (28 ms for a graph of 200,000 rows)."""
        if (0, ()) not in self._sessions:
            with self._lock:
                if (0, ()) not in self._sessions:
                    self._sessions[(0, ())] = session(self.data)
        return self._sessions[(0, ())]

    def _session(self, threads: int, names: tuple[str, ...]) -> Any:
        """A session on `threads` threads for the part of the graph that computes `names` (the
        whole graph's session when that part is all of it)."""
        key = (threads, names)
        if key not in self._sessions:
            with self._lock:
                if key not in self._sessions:  # two DuckDB threads may ask at once: one session each
                    every = {o.name for o in self.full_session.get_outputs()}
                    part = None if every <= set(names) else pruned(self.data, names)
                    if part is not None:
                        try:
                            self._sessions[key] = session(part, threads)
                        except ValueError:  # a graph the pruning broke: the whole one works
                            part = None
                    whole = (threads, ())
                    if part is None:
                        if whole not in self._sessions:
                            self._sessions[whole] = session(self.data, threads)
                        self._sessions[key] = self._sessions[whole]
        return self._sessions[key]

    def run(self, matrix: np.ndarray | Any, roles: list[str], threads: int = 0) -> list[np.ndarray]:
        """The named outputs (by role) for a feature matrix."""
        if not isinstance(matrix, np.ndarray):
            matrix = matrix.toarray()
        x = np.ascontiguousarray(matrix, dtype=self.dtype).reshape(len(matrix), *self.shape)
        names = [self.outputs[r] for r in roles]
        try:
            return list(self._session(threads, tuple(names)).run(names, {self.input: x}))
        except Exception as err:  # onnxruntime's own exception types
            raise ExecutionError(
                f"ONNX Runtime could not run the model: {str(err).splitlines()[0]}",
                hint="Check the model's input shape and type against its features.",
            ) from err

    def predict(self, matrix: np.ndarray | Any, threads: int = 0, embedding: bool = False) -> np.ndarray:
        """Scores as the task's metrics and PREDICT's columns expect (see sqlml.models.base);
        with `embedding`, the penultimate layer's values after them (from the same run)."""
        if self.affine is not None and not embedding:
            return self._shaped(self.affine.scores(matrix))
        roles = ["label", "score"] if self.task == "clustering" else ["score"]
        outs = self.run(matrix, roles + (["embedding"] if embedding else []), threads)
        if self.task == "clustering":
            label = np.asarray(outs[0], dtype=np.int64).reshape(-1)
            distances = np.asarray(outs[1], dtype=np.float64).reshape(len(label), -1)  # to each centre, or the nearest
            nearest = distances[:, 0] if distances.shape[1] == 1 else distances[np.arange(len(label)), label]
            scores = np.column_stack([label + 1.0, nearest])
        else:
            scores = self._shaped(np.asarray(outs[0], dtype=np.float64))
        if not embedding:
            return scores
        extra = np.asarray(outs[-1], dtype=np.float64).reshape(len(scores), -1)
        return np.hstack([scores.reshape(len(scores), -1), extra])

    def _shaped(self, out: np.ndarray) -> np.ndarray:
        """The score output as the task's scores: the positive class's probability, a value,
        or a row of numbers (class probabilities, components)."""
        if self.task == "binary":
            return out[:, -1] if out.ndim == 2 else out.reshape(len(out))
        if self.task in ("regression", "ranking"):
            return out.reshape(len(out))
        return out.reshape(len(out), -1)

    def model_inputs(self, matrix: np.ndarray | Any) -> np.ndarray:
        """The inputs after the model's own preprocessing (role `inputs`)."""
        (out,) = self.run(matrix, ["inputs"])
        return np.asarray(out, dtype=np.float64)


def pruned(data: bytes, outputs: tuple[str, ...]) -> bytes | None:
    """The model with only the operators that compute `outputs` (as its only outputs); None
    when it needs them all, or when an operator holds a subgraph (If, Loop, Scan), whose
    inputs from the outer graph are not the operator's own. ONNX Runtime runs every operator
    of a graph whatever outputs a run asks for: a PREDICT that asks for the score alone would
    also standardise the inputs for the `inputs` output (145 µs a 2,048-row vector of 28 columns)."""
    import onnx

    model = onnx.load_model_from_string(data)
    subgraphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(a.type in subgraphs for node in model.graph.node for a in node.attribute):
        return None
    needed, kept = set(outputs), []
    for node in reversed(model.graph.node):  # a graph's operators are in topological order
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    if len(kept) == len(model.graph.node):
        return None
    graph = model.graph
    part = onnx.helper.make_graph(
        list(reversed(kept)), graph.name, graph.input, [o for o in graph.output if o.name in outputs],
        [i for i in graph.initializer if i.name in needed],
    )  # fmt: skip
    graph.CopyFrom(part)
    return bytes(model.SerializeToString())


def load(data: bytes, meta: dict[str, Any]) -> OnnxModel:
    """A stored ONNX version; a ValueError for bytes that are not its model."""
    onnx = meta.get("onnx") or {}
    if not data.startswith(b"\x08"):  # an ONNX ModelProto starts with its ir_version field
        raise ValueError("not an ONNX model")
    model = OnnxModel(data, meta["task"], dict(onnx.get("outputs") or {}))
    model.affine = Affine.from_meta(meta)
    known = {o.name for o in model.full_session.get_outputs()}
    missing = [name for name in model.outputs.values() if name not in known]
    if missing:
        raise ValueError(f"the graph has no output {', '.join(missing)}")
    return model
