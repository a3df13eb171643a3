"""Training on a Dask cluster with LightGBM's own Dask integration (`lightgbm.dask`).

`TRAIN ... WITH (distributed = true)` on a session with a cluster (`SET cluster = 'local:2'`,
`'tcp://scheduler:8786'`, `sqlml run --cluster`, `SQLML_CLUSTER`, `sqlml.connect(cluster=...)`)
runs the query in DuckDB into a temporary table (DuckDB spills what does not fit in memory),
has DuckDB write the training rows, already encoded, as Parquet partitions in a folder the
workers read (`partitions = n`, by default two per worker), trains one model over the workers
with `DaskLGBMClassifier` / `DaskLGBMRegressor`, and saves its `to_local()` booster as an
ordinary version: PREDICT, EVALUATE and the result functions work on it as on any other. The
validation rows stay with the driver, which scores them. Nothing of the data passes through
Python on the driver but the validation rows and the distinct labels and categories.

dask is the `dask` extra, imported only here, when a cluster is used.

>>> check_address("local:2"), check_address("tcp://10.0.0.5:8786")
('local:2', 'tcp://10.0.0.5:8786')
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa

from sqlml import features
from sqlml.errors import BindError, ExecutionError
from sqlml.features import FeatureSpec, quote
from sqlml.table_sql import sql_literal

_LOCAL = re.compile(r"local:([0-9]+)")
_CLIENTS: dict[str, Any] = {}  # address -> (client, cluster or None), one per process
_LOCK = threading.Lock()


def missing() -> str | None:
    """What to install for distributed training, or None when it is installed."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        return "Distributed training needs Dask: pip install 'sqlml[dask]'."
    return None


def check_address(address: str) -> str:
    """A cluster address as given, checked: 'local:N' (a LocalCluster of N worker processes,
    1 to 64) or a scheduler's URL; an unreachable scheduler is an error naming it."""
    local = _LOCAL.fullmatch(address)
    if local:
        if not 1 <= int(local.group(1)) <= 64:
            raise BindError(
                f"Bad cluster '{address}': a local cluster has 1 to 64 workers.", hint="SET cluster = 'local:2'"
            )
        return address
    url = urlparse(address)
    if url.scheme not in ("tcp", "tls") or not url.hostname or not url.port:
        raise BindError(
            f"Bad cluster address '{address}'.",
            hint="A Dask scheduler's address (SET cluster = 'tcp://host:8786') or 'local:N' for N local workers.",
        )
    try:
        socket.create_connection((url.hostname, url.port), timeout=3).close()
    except OSError as err:
        raise BindError(
            f"Cannot reach the Dask scheduler at {address}: {err.strerror or err}.",
            hint="Start it (dask scheduler) or check the address; SET cluster = 'local:2' runs workers on this machine.",
        ) from err
    return address


def client_for(address: str) -> Any:
    """The Dask client of a cluster address, started once per process."""
    with _LOCK:
        if address in _CLIENTS:
            client, _ = _CLIENTS[address]
            if client.status == "running":
                return client
        from distributed import Client, LocalCluster

        local = _LOCAL.fullmatch(address)
        try:
            if local:
                cluster = LocalCluster(n_workers=int(local.group(1)), threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)  # fmt: skip
                client = Client(cluster)
                client.run(_quiet)  # LightGBM's network prints to the workers' stdout, which is ours here
            else:
                cluster, client = None, Client(address, timeout="10s")
        except OSError as err:
            raise ExecutionError(f"Cannot reach the Dask scheduler at {address}: {err}.") from err
        _CLIENTS[address] = (client, cluster)
        return client


def workers(client: Any) -> dict[str, Any]:
    """The scheduler's workers now, by address. (Not `client.scheduler_info()`: the client's
    periodic refresh can replace its cached answer with one that lists no workers.)"""
    return dict(client.sync(client.scheduler.identity, n_workers=-1).get("workers", {}))


def forget(client: Any) -> None:
    """Close a client (and its local cluster) and start a new one at its next use."""
    with _LOCK:
        for address, (known, cluster) in list(_CLIENTS.items()):
            if known is client:
                del _CLIENTS[address]
                threading.Thread(target=_close, args=(known, cluster), daemon=True).start()


def _close(client: Any, cluster: Any) -> None:
    try:
        client.close(timeout=5)
        if cluster is not None:
            cluster.close(timeout=5)
    except Exception:  # closing what is already broken
        pass


def _quiet() -> None:
    """In a local worker: send its standard output (LightGBM's C++ logging) to /dev/null."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def close_all() -> None:
    """Close the clients and local clusters this process started."""
    with _LOCK:
        for client, cluster in _CLIENTS.values():
            client.close()
            if cluster is not None:
                cluster.close()
        _CLIENTS.clear()


def _code(column: str, values: list[Any]) -> str:
    """SQL for a value's position in a sorted list, from 0 (NULL when it is not there), as a DOUBLE."""
    return f"CAST(list_position([{', '.join(sql_literal(v) for v in values)}], {column}) - 1 AS DOUBLE)"


def _encoded(spec: FeatureSpec, name: str) -> str:
    """A feature column as LightGBM's input, in SQL: a number, or a category's code (NULL: missing),
    as features.encode codes it."""
    if spec.kind == "categorical":
        return f"{_code(quote(spec.name), spec.categories)} AS {quote(name)}"
    return f"CAST({quote(spec.name)} AS DOUBLE) AS {quote(name)}"


def _label_sql(classes: list[Any] | None) -> str:
    label = quote(features.LABEL)
    return f"{_code(label, classes) if classes is not None else f'CAST({label} AS DOUBLE)'} AS __label"


class Prepared:
    """The training query in a temporary DuckDB table, with a row number and a validation flag."""

    def __init__(self, con: Any, query: str, fraction_of: Any, seed: int, grouped: bool = False) -> None:
        self.con = con
        self.table = f"__sqlml_distributed_{uuid.uuid4().hex[:10]}"
        con.execute(f"CREATE TEMP TABLE {self.table} AS SELECT *, row_number() OVER () AS __row FROM ({query})")
        self.rows = int(con.execute(f"SELECT count(*) FROM {self.table}").fetchall()[0][0])
        self.fraction = fraction_of(self.rows)
        cut = round(self.fraction * 1_000_000)
        unit = quote(features.GROUP) if grouped else "__row"  # a ranker validates on whole query groups
        self.valid = f"(hash({unit}, {int(seed)}) % 1000000 < {cut})"

    def fetch(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def drop(self) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {self.table}")


def fit(
    client: Any, folder: Path, prepared: Prepared, specs: list[FeatureSpec], names: list[str], classes: list[Any] | None,
    task: str, params: dict[str, Any], rounds: int, partitions: int | None, weight: bool, timings: dict[str, float],
) -> Any:  # fmt: skip
    """Write the training rows as Parquet partitions and train over the workers; the local booster.
    `timings` gets the seconds spent writing the partitions and training. A ranker's query groups
    are dealt to the partitions whole (by their rank, round robin), each partition sorted by group."""
    import dask.dataframe as dd
    import lightgbm as lgb

    started = set(workers(client))
    n_workers = len(started)
    if n_workers == 0:
        raise ExecutionError("The Dask cluster has no workers.", hint="Start workers for the scheduler.")
    count = partitions or 2 * n_workers
    ranking = task == "ranking"
    columns = [_encoded(s, n) for s, n in zip(specs, names)] + [_label_sql(classes)]
    if weight:
        columns.append(f"CAST({quote(features.WEIGHT)} AS DOUBLE) AS __weight")
    part = f"__row % {count}"
    if ranking:
        columns.append(f"dense_rank() OVER (ORDER BY {quote(features.GROUP)}) AS __group")
        part = f"(__group - 1) % {count}"
    target = folder / "parts"
    began = time.perf_counter()
    prepared.con.execute(
        f"COPY (SELECT * EXCLUDE (__row), {part} AS __part FROM (SELECT {', '.join(columns)}, __row FROM {prepared.table} "
        f"WHERE NOT {prepared.valid})) TO '{target}' (FORMAT parquet, PARTITION_BY (__part))"
    )
    timings["write_s"] = round(time.perf_counter() - began, 3)
    began = time.perf_counter()
    # one partition per file, whatever columns are read, and persisted before X and y are taken from it: dask
    # sizes partitions by the columns a read selects, so reading X and y apart could pair rows wrongly
    frame = dd.read_parquet(str(target), split_row_groups=False, blocksize=None, aggregate_files=False)
    frame = frame.drop(columns=["__part"])
    if ranking:
        if frame.npartitions < n_workers:
            raise ExecutionError(
                f"Distributed ranking deals whole query groups to {n_workers} workers, but the training rows hold "
                f"only {frame.npartitions}.", hint="Train on one machine: leave out distributed.",
            )  # fmt: skip
        frame = frame.map_partitions(_by_group)
    elif frame.npartitions < n_workers:
        frame = frame.repartition(npartitions=n_workers)
    frame = client.persist(frame)
    x, y = frame[names], frame["__label"]
    group = frame["__group"].map_partitions(_run_lengths, meta=("__group", "int64")) if ranking else None
    cls = {"binary": lgb.DaskLGBMClassifier, "multiclass": lgb.DaskLGBMClassifier, "ranking": lgb.DaskLGBMRanker}.get(
        task, lgb.DaskLGBMRegressor
    )
    kwargs = {k: v for k, v in params.items() if k not in ("num_class", "num_threads")}
    model = cls(client=client, n_estimators=rounds, **kwargs)
    categorical = [n for s, n in zip(specs, names) if s.kind == "categorical"]
    done: dict[str, Any] = {}

    def run() -> None:
        import warnings

        from sqlml.models.lightgbm import _QUIET

        lgb.register_logger(_QUIET)  # lightgbm.dask's notes ("Finding random open ports ...")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Parameter n_jobs will be ignored."
                extra: dict[str, Any] = {"group": group} if ranking else {}
                model.fit(x, y, sample_weight=frame["__weight"] if weight else None,
                          categorical_feature=categorical or "auto", **extra)  # fmt: skip
            done["model"] = model.to_local()
        except Exception as err:  # a worker lost, LightGBM's network broken, ...
            done["error"] = err

    thread = threading.Thread(target=run, daemon=True, name="sqlml-dask-train")
    thread.start()
    while thread.is_alive():  # a worker lost mid-training leaves LightGBM's others waiting: notice and stop
        thread.join(0.5)
        current = set(workers(client))
        if thread.is_alive() and not started <= current:  # by address: a restarted worker is a new one
            forget(client)  # its LightGBM tasks wait on a lost peer: the next TRAIN starts afresh
            raise ExecutionError(
                f"A Dask worker was lost during training ({len(started & current)} of {n_workers} left); nothing was saved.",
                hint="Run the TRAIN again when the cluster is whole.",
            )
    if "error" in done:
        err = done["error"]
        forget(client)  # a broken LightGBM network can leave tasks waiting on the workers
        raise ExecutionError(
            f"Distributed training failed on the cluster's workers: {type(err).__name__}: {err}",
            hint="A worker may have been lost or a connection broken; nothing was saved. Run the TRAIN again.",
        ) from err
    timings["train_s"] = round(time.perf_counter() - began, 3)
    # the sklearn wrapper's booster records pandas' categories, which sqlml's text models never carry
    text = done["model"].booster_.model_to_string()
    head, _, _ = text.rstrip().rpartition("\npandas_categorical:")
    return lgb.Booster(model_str=head + "\npandas_categorical:null\n")


def _by_group(frame: Any) -> Any:
    """A partition's rows with each query group's rows together (a worker's step)."""
    return frame.sort_values("__group", kind="stable")


def _run_lengths(groups: Any) -> Any:
    """The sizes of the runs of equal group ranks in a sorted partition (a worker's step)."""
    import numpy as np
    import pandas as pd

    values = groups.to_numpy()
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.array([], dtype=np.int64)
    return pd.Series(np.diff(np.r_[starts, len(values)]), dtype="int64", name="__group")


def predict_files(address: str, catalog: Path, model: Any, files: str, target: str) -> dict[str, int]:
    """Score each file matching `files` on a worker, with sqlml's own PREDICT (the same
    vectorised scorer as on one machine), into `target/<file>.parquet`; rows written per file.
    The workers read the files, the catalog and the target folder at the same paths."""
    import glob
    import os

    paths = sorted(glob.glob(os.path.abspath(files)))
    if not paths:
        raise ExecutionError(f"No file matches '{files}'.", hint="Give a path or a glob: 'data/*.parquet'.")
    out = Path(target).absolute()
    out.mkdir(parents=True, exist_ok=True)
    client = client_for(address)
    names = [f"{Path(p).stem}-{i:05d}.parquet" for i, p in enumerate(paths)]
    futures = client.map(_score_file, [str(catalog.absolute())] * len(paths), [model.name] * len(paths),
                         [model.version] * len(paths), paths, [str(out / n) for n in names], pure=False)  # fmt: skip
    try:
        counts = client.gather(futures)
    except Exception as err:  # a worker lost, a file unreadable, ...
        raise ExecutionError(f"Distributed PREDICT failed: {type(err).__name__}: {err}",
                             hint="Files already written stay in the target folder; run it again.") from err  # fmt: skip
    return dict(zip(names, counts))


def _score_file(catalog: str, model: str, version: int, path: str, out: str) -> int:
    """On a worker: PREDICT over one file into one Parquet file, by a sqlml session of its own."""
    import pyarrow.parquet as pq

    import sqlml

    con = sqlml.connect(catalog=catalog)
    try:
        source = "'" + path.replace("'", "''") + "'"
        target = "'" + out.replace("'", "''") + "'"
        con.execute(
            f"COPY (SELECT * FROM PREDICT(MODEL {model} VERSION {version}, {source})) TO {target} (FORMAT parquet)"
        )
    finally:
        con.close()
    return int(pq.ParquetFile(out).metadata.num_rows)


def wait_for_workers(client: Any, count: int, timeout: float = 60) -> None:
    """Wait until `count` workers have joined (a local cluster starts them asynchronously)."""
    deadline = time.monotonic() + timeout
    while len(workers(client)) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def folder_for(root: Path) -> Path:
    """A fresh folder for a TRAIN's partitions, removed when it ends."""
    folder = root / ".distributed" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    return folder


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
