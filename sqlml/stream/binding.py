"""Binding stream statements: CREATE/DROP STREAM, and queries that read a stream.

A query over a stream becomes a StreamJob: the window table function over the stream reads
the rows of the windows that just closed (`__sqlml_fired`), a plain reference to the stream
reads the current micro-batch (`__sqlml_batch`), and the statement around it (SELECT,
INSERT INTO, COPY ... TO) is the sink. A query whose rows change as events arrive (GROUP BY
without a window, Top-N, joins in which events meet each other) is an updating query, its
output a changelog (see changelog.py). Query shapes with no streaming meaning are refused
here, with what would work instead.
"""

from __future__ import annotations

import glob
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import duckdb
import sqlglot
from sqlglot import exp

from sqlml import ast
from sqlml.dialect import Sqlml
from sqlml.errors import did_you_mean
from sqlml.features import quote
from sqlml.literals import interval_us, literal
from sqlml.media import MEDIA_COLUMNS
from sqlml.stream import shapes
from sqlml.stream.changelog import PLUS, ChangelogSpec
from sqlml.stream.changelog import VIEW as CHANGELOG_VIEW
from sqlml.stream.changelog_keys import Keys, keys
from sqlml.stream.dedup import VIEW as DEDUP_VIEW
from sqlml.stream.dedup import DedupSpec
from sqlml.stream.interval_join import FOREVER
from sqlml.stream.interval_join import bounds as interval_bounds
from sqlml.stream.over import OverSpec, only_new, prepare
from sqlml.stream.runner import BATCH, OVER_VIEW, Sink, StreamInput, StreamJob
from sqlml.stream.streams import CONNECTORS, FLINK_OPTIONS, FLINK_STARTS, FORMATS, KAFKA_OPTIONS, OPTIONS, StreamDef

if TYPE_CHECKING:
    from sqlml.plan import Binder


def bind_create_stream(binder: Binder, node: ast.CreateStream) -> StreamDef:
    name = node.this.name.lower()
    columns = [(c.this.name, str(duckdb.sqltype(c.args["kind"].sql(dialect="duckdb")))) for c in node.args["columns"]]
    names = [c for c, _ in columns]
    time_ident = node.args["time"]
    if time_ident.name not in names:
        raise binder.error(f"WATERMARK FOR names '{time_ident.name}', which is not a column of the stream.", time_ident,
                           did_you_mean(time_ident.name, names))  # fmt: skip
    time_type = dict(columns)[time_ident.name]
    if not time_type.upper().startswith("TIMESTAMP"):
        raise binder.error(
            f"The WATERMARK column '{time_ident.name}' has type {time_type}; it must be a TIMESTAMP.", time_ident
        )
    delay_node = node.args.get("delay")
    delay = 0
    if (
        isinstance(delay_node, exp.Sub)
        and isinstance(delay_node.this, exp.Column)
        and delay_node.this.name == time_ident.name
    ):
        delay = interval_us(binder, delay_node.expression, "The WATERMARK delay", allow_zero=True)
    elif not (isinstance(delay_node, exp.Column) and delay_node.name == time_ident.name):
        raise binder.error(
            "A WATERMARK must be the time column minus a fixed INTERVAL.", delay_node,
            f"Write WATERMARK FOR {time_ident.name} AS {time_ident.name} - INTERVAL '5' SECOND.",
        )  # fmt: skip
    options: dict[str, Any] = {}
    nodes: dict[str, exp.Expr] = {}
    for prop in node.args.get("options") or []:
        key = prop.this.name.lower()
        if key == "connector" and str(literal(prop.expression)).lower() == "kafka":
            options.setdefault("format", "json")
        if key == "scan.startup.mode" and options.get("start") is not None:
            continue  # 'timestamp': the timestamp came first
        key = FLINK_OPTIONS.get(key, key)
        if key not in OPTIONS and not key.startswith("properties."):
            raise binder.error(
                f"Unknown stream option '{key}'.",
                prop.this,
                did_you_mean(key, OPTIONS) or f"Options: {', '.join(OPTIONS)}.",
            )
        value = prop.expression
        if key in ("idle_timeout", "broker_timeout"):
            options[key] = interval_us(binder, value, f"The stream option {key}", allow_zero=key == "idle_timeout")
        else:
            options[key] = literal(value)
            options[key] = FLINK_STARTS.get(options[key], options[key]) if key == "start" else options[key]
        nodes[key] = value
    kinds: dict[str, tuple[type, str]] = {"batch_size": (int, "a whole number above 0"), "follow": (bool, "TRUE or FALSE"),
                                          "path": (str, "a quoted path"), "checkpoint": (str, "a quoted path")}  # fmt: skip
    for key, (kind, wanted) in kinds.items():
        given: Any = options.get(key)
        if key in options and (type(given) is not kind or (key == "batch_size" and cast(int, given) <= 0)):
            raise binder.error(f"Bad value {given!r} for stream option {key}: expected {wanted}.", nodes[key])
    connector = _one_of(binder, "connector", options.setdefault("connector", "files"), tuple(CONNECTORS), nodes)
    if connector == "kafka":
        _check_kafka(binder, node, options, nodes)
    else:
        kafka_only = [k for k in options if k in KAFKA_OPTIONS or k.startswith("properties.")]
        if kafka_only:
            raise binder.error(f"The option {kafka_only[0]} is for Kafka streams (connector = 'kafka').",
                               nodes[kafka_only[0]])  # fmt: skip
    if connector == "files":
        if "path" not in options:
            raise binder.error(
                "The files connector needs a path.",
                node.this,
                "Add WITH (connector = 'files', path = 'events/*.jsonl', format = 'jsonl').",
            )
        media_format = _one_of(binder, "format", options.setdefault("format", "jsonl"), FORMATS, nodes)
        if media_format in MEDIA_COLUMNS:
            unknown = [n for n, _ in columns if n not in MEDIA_COLUMNS[media_format]]
            if unknown:
                raise binder.error(
                    f"A stream of {media_format} files has no column '{unknown[0]}'.", node.this,
                    f"Its columns are {', '.join(MEDIA_COLUMNS[media_format])} (last_modified: the file's "
                    "modification time, in UTC).",
                )  # fmt: skip
        if not options.get("follow") and not glob.glob(str(options["path"])):
            raise binder.error(
                f"The path '{options['path']}' matches no files.", nodes.get("path"),
                "Check the path (relative to the working directory), or set follow = true to wait for files.",
            )  # fmt: skip
    return StreamDef(name, columns, time_ident.name, delay, options)


def _check_kafka(binder: Binder, node: ast.CreateStream, options: dict[str, Any], nodes: dict[str, exp.Expr]) -> None:
    """A Kafka stream's options: a topic and brokers, JSON messages, and where to start."""
    for key in ("topic", "bootstrap_servers"):
        if not isinstance(options.get(key), str) or not options[key]:
            raise binder.error(
                f"A Kafka stream needs {key} (a quoted string).", nodes.get(key, node.this),
                "WITH (connector = 'kafka', topic = 'clicks', bootstrap_servers = 'localhost:9092')",
            )  # fmt: skip
    options["format"] = _one_of(
        binder, "format", "json" if options["format"] == "jsonl" else options["format"], ("json", "csv"), nodes
    )
    start = options.get("start", "earliest")
    if isinstance(start, str) and start.lower() in ("earliest", "latest", "group"):
        options["start"] = start.lower()
    elif start is not None:  # a point in time: the first offset at or after it, per partition
        try:
            options["start"] = int(start) if isinstance(start, int) else int(
                duckdb.execute("SELECT epoch_ms(CAST(? AS TIMESTAMP))", [str(start)]).fetchall()[0][0]
            )  # fmt: skip
        except duckdb.Error:
            raise binder.error(
                f"Bad start {start!r} for a Kafka stream.", nodes.get("start"),
                "start = 'earliest' (the default), 'latest', 'group' (the group's committed offsets), or a "
                "timestamp such as '2024-05-01 12:00:00' (or milliseconds since the epoch).",
            ) from None  # fmt: skip
    options.setdefault("follow", True)


def _one_of(binder: Binder, option: str, value: Any, choices: tuple[str, ...], nodes: dict[str, exp.Expr]) -> str:
    """A stream option's value, checked against its choices."""
    if value not in choices:
        hint = did_you_mean(str(value), choices) or f"{option.capitalize()}s: {', '.join(choices)}."
        raise binder.error(f"Unknown {option} '{value}'.", nodes.get(option), hint)
    return str(value)


def _stream_of(binder: Binder, table: exp.Expr) -> StreamDef | None:
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier) or table.args.get("db"):
        return None
    return binder.streams.get(table.name) if binder.streams is not None else None


class _Updating(Exception):
    """The query is an updating one (see changelog.py): `reason` says what makes it so."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def bind_stream_query(binder: Binder, node: exp.Expr) -> StreamJob | None:
    """The StreamJob for a statement that reads a stream, or None when it reads none."""
    original = node.copy()
    try:
        return _bind_append_only(binder, node)
    except _Updating as updating:
        return bind_updating(binder, original, updating.reason)


def _sink(binder: Binder, node: exp.Expr) -> tuple[Sink, str, str, exp.Expr, StreamDef | None]:
    """Where a statement's rows go: the sink, its target, COPY's options, the query, and the
    Kafka stream an INSERT writes to."""
    sink, target, copy_options, query = Sink.SELECT, "", "", node
    sink_stream = None
    if isinstance(node, exp.Insert):
        sink, target, query = Sink.INSERT, node.this.sql(dialect=Sqlml), node.expression
        sink_stream = _stream_of(binder, node.this)
        if sink_stream is not None:
            if sink_stream.connector != "kafka":
                raise binder.error(f"Stream '{sink_stream.name}' reads {sink_stream.connector}; only Kafka streams "
                                   "can be written to.", node.this, "Write to a table, or COPY to files.")  # fmt: skip
            sink = Sink.KAFKA
    elif isinstance(node, exp.Copy):
        sink, query = Sink.COPY, node.this
        target = node.args["files"][0].name if node.args.get("files") else ""
        params = node.args.get("params") or []
        copy_options = "(" + ", ".join(p.sql(dialect=Sqlml) for p in params) + ")" if params else ""
        if isinstance(query, exp.Subquery):
            query = query.this
    return sink, target, copy_options, query, sink_stream


def _bind_append_only(binder: Binder, node: exp.Expr) -> StreamJob | None:
    """A query whose output rows, once out, stand: raises _Updating for one whose rows change."""
    sink, target, copy_options, query, sink_stream = _sink(binder, node)
    versioned = _temporal_joins(binder, query)
    windows = [w for w in query.find_all(ast.WindowTable) if _stream_of(binder, w.args["table"])]
    plain = [
        t for t in query.find_all(exp.Table) if not isinstance(t.parent, ast.WindowTable) and _stream_of(binder, t)
    ]
    if not windows and not plain:
        if sink == Sink.KAFKA:
            raise binder.error(
                "INSERT INTO a Kafka stream writes a continuous query's output: its query must read a stream.",
                node.expression, "Write a table's rows to Kafka by reading the table as a stream: "
                "CREATE STREAM t_events (...) WITH (connector = 'files', path = 't.parquet', format = 'parquet').",
            )  # fmt: skip
        return None
    assert binder.streams is not None
    first = windows[0] if windows else plain[0]
    if windows and plain:
        raise binder.error(
            "A query cannot read a stream both through a window function and directly.", plain[0],
            "Read it through windows on every side: join the same window function on window_start and window_end.",
        )  # fmt: skip
    names = [w.args["table"].name.lower() for w in windows] + [t.name.lower() for t in plain]
    if versioned is not None:
        return _bind_temporal(binder, node, query, plain, versioned)
    joined = _interval_join(binder, query, plain) if len(plain) == 2 and len(set(names)) == 2 else None
    if not windows and ((len(plain) > 1 and joined is None) or len(set(names)) < len(names)):
        raise _Updating("a join in which a stream's events meet each other")
    if (len(plain) > 1 and joined is None) or len(set(names)) < len(names):
        raise binder.error(
            "A query may read each stream once: through one window function, or directly.", first,
            "Join two streams through their windows (same window function on each), or use a CTE to read one window twice.",
        )  # fmt: skip
    dedup = _dedup(binder, query, plain[0]) if len(plain) == 1 and not windows else None
    try:
        shapes.check(query, lambda n: _kind(binder, n), joined[0] if joined else None, dedup[1] if dedup else None)
    except shapes.ShapeError as err:
        if err.updating and not windows:
            raise _Updating(err.updating) from None
        raise binder.error(err.message, err.node, err.hint.replace("TABLE s,", f"TABLE {names[0]},")) from None
    if sink == Sink.COPY and not target:
        raise binder.error("COPY of a stream needs a folder: COPY (...) TO 'out/' (FORMAT parquet).", node)
    referenced = {c.name for c in query.find_all(exp.Column)}
    reads_all = any(shapes.reads_star(select) for select in query.find_all(exp.Select))
    inputs = []
    for k, tvf in enumerate(windows):
        stream = binder.streams.require(tvf.args["table"].name)
        spec = binder.window_spec(tvf, dict(stream.columns))
        view = f"__sqlml_fired_{k}"
        tvf.set("rewrite", f"SELECT * FROM {view}")
        needed = () if reads_all else tuple(sorted(referenced & {n for n, _ in stream.columns}))
        inputs.append(StreamInput(stream, spec, view, needed))
    over = None
    stand_ins: list[str] = []
    if joined is not None:  # an interval join: each side read through a view of its own
        for k, (table, reach) in enumerate(zip(plain, joined[1])):
            stream = binder.streams.require(table.name)
            stand_in = sqlglot.parse_one(_stand_in(stream, k), dialect=Sqlml)
            stand_ins.append(stand_in.sql(dialect=Sqlml))
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
            table.replace(exp.Subquery(this=stand_in, alias=alias))
            inputs.append(StreamInput(stream, None, f"__sqlml_join_{k}", reach=reach))
    elif not windows:
        stream = binder.streams.require(plain[0].name)
        overs = shapes.over_clauses(query) if isinstance(query, exp.Select) else []
        over = _over_spec(binder, overs, stream) if overs else None
        view = DEDUP_VIEW if dedup else OVER_VIEW if over else BATCH
        # the stream is read through a typed, empty stand-in while binding (so that what reads
        # it, PREDICT's input say, can be described), which becomes the micro-batch when it runs
        stand_in = sqlglot.parse_one(_stand_in(stream), dialect=Sqlml)
        rendered = stand_in.sql(dialect=Sqlml)
        table = plain[0]
        source = table.find_ancestor(ast.QuerySource)
        if isinstance(table.parent, ast.QuerySource):  # PREDICT(MODEL m, TABLE stream)
            table.parent.set("text", rendered)
        else:
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
            table.replace(exp.Subquery(this=stand_in, alias=alias))
            if source is not None:
                source.set("text", source.this.sql(dialect=Sqlml))
        if source is not None:  # PREDICT over the stream: scored point in time
            source.set("stream_time", stream.time)
        needed = () if reads_all or over is None else tuple(sorted(referenced & {n for n, _ in stream.columns}))
        inputs.append(StreamInput(stream, None, view, needed, over, dedup=dedup[0] if dedup else None))
    binder.rewrite_all(query)
    hidden = prepare(query, over) if over is not None else ""  # type: ignore[arg-type]
    sql = query.sql(dialect=Sqlml)
    outer_sql = ""
    if joined is not None and (joined[0].args.get("side") or "").upper() == "LEFT":
        assert isinstance(query, exp.Select)
        outer_sql, sql = _outer(query, stand_ins, inputs)
    for rendered_k, inp in zip(stand_ins, inputs):
        sql = sql.replace(rendered_k, f"SELECT * FROM {inp.view}")
    if not windows and joined is None:
        sql = sql.replace(rendered, f"SELECT * FROM {inputs[0].view}")
    if over is not None:
        sql = only_new(sql, hidden)
    if dedup is not None and dedup[2]:
        sql = f"SELECT * EXCLUDE (__sqlml_seq) FROM ({sql})"
    return StreamJob(binder.statement.text, tuple(inputs), sql, sink, target, copy_options, sink_stream, outer_sql)


UPDATING_HINT = (
    "INSERT INTO a table with a PRIMARY KEY (the changes are applied as upserts), or SELECT to see the changes; "
    "or aggregate per window for rows that never change: FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' "
    "MINUTE)) GROUP BY window_start, window_end, ..."
)


def bind_updating(binder: Binder, node: exp.Expr, reason: str) -> StreamJob:
    """An updating query (see changelog.py): each stream reference read through a view of its
    events so far; the output a changelog for a SELECT, upserts for an INSERT into a keyed
    table, and (for an insert-only query: joins and filters) rows appended by any sink."""
    sink, target, copy_options, query, sink_stream = _sink(binder, node)
    insert_only = _insert_only(query)
    if sink not in (Sink.SELECT, Sink.INSERT) and not insert_only:
        what = "COPY writes files" if sink == Sink.COPY else "A Kafka stream takes rows"
        raise binder.error(f"{what} that stay as written, but this query's rows change as events arrive "
                           f"({reason}).", query, UPDATING_HINT)  # fmt: skip
    _temporal_joins(binder, query)
    assert binder.streams is not None
    tables = [t for t in query.find_all(exp.Table) if _stream_of(binder, t)]
    if any(isinstance(t.parent, ast.QuerySource) for t in tables):
        raise binder.error("PREDICT over a stream scores each event once, as it arrives; this query's rows change "
                           f"as events arrive ({reason}).", node, UPDATING_HINT)  # fmt: skip
    streams: list[StreamDef] = []
    for table in tables:
        stream = binder.streams.require(table.name)
        if stream not in streams:
            streams.append(stream)
    occurrences = tuple(streams.index(binder.streams.require(t.name)) for t in tables)
    referenced = {c.name for c in query.find_all(exp.Column)}
    reads_all = any(shapes.reads_star(select) for select in query.find_all(exp.Select))
    found = keys(query, streams[0].name, {n for n, _ in streams[0].columns}) if len(tables) == 1 else Keys(None)
    stand_ins = []
    for j, table in enumerate(tables):
        stand_in = sqlglot.parse_one(_stand_in(streams[occurrences[j]], j), dialect=Sqlml)
        stand_ins.append(stand_in.sql(dialect=Sqlml))
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        table.replace(exp.Subquery(this=stand_in, alias=alias))
    binder.rewrite_all(query)
    sql = query.sql(dialect=Sqlml)
    columns = tuple(name for name, _ in binder.described(sql, query))
    for j, rendered in enumerate(stand_ins):
        sql = sql.replace(rendered, f"SELECT * FROM {CHANGELOG_VIEW}{j}")
    inputs = [
        StreamInput(stream, None, "", () if reads_all else tuple(sorted(referenced & {n for n, _ in stream.columns})))
        for stream in streams
    ]
    spec = ChangelogSpec(sql, columns, occurrences, insert_only, found.key, found.partition, found.carried)
    if sink == Sink.INSERT and not insert_only:
        spec = _upsert_keys(binder, node.this, spec, reason)
    out = f"SELECT * FROM {PLUS}" if insert_only else ""
    return StreamJob(binder.statement.text, tuple(inputs), out, sink, target, copy_options, sink_stream, changelog=spec)


def _insert_only(query: exp.Expr) -> bool:
    """Whether a query over streams only ever adds rows: inner joins, filters and projections
    (no aggregate, DISTINCT, ranking, outer join, set operation, LIMIT or subquery expression), each
    stream reference read once (a CTE read twice reads its stream twice)."""
    ctes = [c.alias_or_name.lower() for c in query.find_all(exp.CTE)]
    names = [t.name.lower() for t in query.find_all(exp.Table) if not t.args.get("db")]
    if any(names.count(c) > 1 for c in ctes):
        return False
    for node in query.walk():
        if isinstance(node, (exp.AggFunc, exp.Window, exp.Group, exp.Having, exp.Distinct, exp.Limit, exp.Offset,
                             exp.Qualify)):  # fmt: skip
            return False
        if isinstance(node, exp.SetOperation):  # a branch without the new events would repeat its rows
            return False
        if isinstance(node, exp.Join) and (node.args.get("side") or (node.args.get("kind") or "").upper() not in (
                "", "INNER", "CROSS")):  # fmt: skip
            return False
        if isinstance(node, exp.Subquery) and not isinstance(node.parent, (exp.From, exp.Join)):
            return False
    return True


def _upsert_keys(binder: Binder, into: exp.Expr, spec: ChangelogSpec, reason: str) -> ChangelogSpec:
    """The target's PRIMARY KEY, and the output columns that fill it (by position, as INSERT)."""
    table = into.this if isinstance(into, exp.Schema) else into
    assert isinstance(table, exp.Table) and binder.streams is not None
    primary = _primary_key(binder, table)
    listed = [e.name for e in into.expressions] if isinstance(into, exp.Schema) else None
    targets = listed or list(binder.columns(f"SELECT * FROM {table.sql(dialect=Sqlml)}", table))
    if not primary:
        key = [targets[spec.columns.index(k)] for k in spec.key or () if spec.columns.index(k) < len(targets)]
        raise binder.error(
            f"Table '{table.name}' has no PRIMARY KEY, and this query's rows change as events arrive ({reason}): "
            "an INSERT applies the changes as upserts by the table's key.", table,
            f"CREATE TABLE {table.name} (..., PRIMARY KEY ({', '.join(key) or 'k'})); or aggregate per window for "
            "rows that never change (TUMBLE ... GROUP BY window_start, window_end, ...).",
        )  # fmt: skip
    if len(targets) != len(spec.columns):
        raise binder.error(f"INSERT INTO '{table.name}' fills {len(targets)} columns, but the query gives "
                           f"{len(spec.columns)}.", table)  # fmt: skip
    lower = [t.lower() for t in targets]
    missing = [k for k in primary if k.lower() not in lower]
    if missing:
        raise binder.error(f"The INSERT's column list leaves out '{missing[0]}', part of the PRIMARY KEY of "
                           f"'{table.name}': an upsert needs the whole key.", into)  # fmt: skip
    sink_key = tuple(spec.columns[lower.index(k.lower())] for k in primary)
    return replace(spec, sink_key=sink_key, target_key=tuple(primary), table=table.sql(dialect=Sqlml))


def _over_spec(binder: Binder, overs: list[exp.Window], stream: StreamDef) -> OverSpec:
    """The window of a query's OVER aggregates (shapes has checked that there is one)."""
    window = overs[0]
    order = window.args["order"].expressions[0].this
    if order.name != stream.time:
        raise binder.error(
            f"An OVER aggregation over stream '{stream.name}' orders by its time column '{stream.time}', not "
            f"'{order.name}'.", order, f"ORDER BY {stream.time}: rows are output as the watermark passes them.",
        )  # fmt: skip
    spec = window.args["spec"]
    kind, start = spec.args["kind"], spec.args["start"]
    if kind == "RANGE":
        size = interval_us(binder, start, "An OVER RANGE frame", allow_zero=True)
    elif isinstance(start, exp.Literal) and not start.is_string and start.name.isdigit():
        size = int(start.name)
    else:
        raise binder.error(f"A ROWS frame counts rows: {start.sql(dialect=Sqlml)} is not a whole number.", start)
    partition = window.args.get("partition_by") or []
    return OverSpec(stream.time, kind, size, tuple(shapes.unqualified(p).sql(dialect=Sqlml) for p in partition))


def _stand_in(stream: StreamDef, k: int = 0) -> str:
    """An empty query with the stream's columns and types (`k` tells two apart)."""
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {quote(n)}" for n, t in stream.columns) + f" WHERE {k + 1} = 0"


def _dedup(binder: Binder, query: exp.Expr, table: exp.Table) -> tuple[DedupSpec, exp.Select, bool] | None:
    """Flink's deduplication: `SELECT ... FROM (SELECT ..., ROW_NUMBER() OVER (PARTITION BY k
    ORDER BY ts) AS rn FROM stream [WHERE ...]) WHERE rn = 1`. Returns its spec, the inner
    SELECT (ordered by arrival among equal times) and whether the output would show the arrival
    number (both SELECTs read *)."""
    inner = query.args["from_"].this.this if isinstance(query, exp.Select) and query.args.get("from_") else None
    if not isinstance(inner, exp.Select) or inner.args.get("joins") or not inner.args.get("from_"):
        return None
    if inner.args["from_"].this is not table:
        return None
    numbered = [
        e
        for e in inner.expressions
        if isinstance(e.unalias(), exp.Window) and isinstance(e.unalias().this, exp.RowNumber)
    ]
    if len(numbered) != 1 or not numbered[0].alias:
        return None
    window, name = numbered[0].unalias(), numbered[0].alias
    stream = binder.streams.require(table.name)  # type: ignore[union-attr]
    keys = window.args["order"].expressions if window.args.get("order") else []
    where = query.args.get("where")
    first = (
        where is not None and isinstance(where.this, exp.EQ) and isinstance(where.this.this, exp.Column)
        and where.this.this.name == name and where.this.expression.sql() == "1"
    )  # fmt: skip
    if (not first or len(keys) != 1 or keys[0].args.get("desc") or not isinstance(keys[0].this, exp.Column)
            or keys[0].this.name != stream.time or not window.args.get("partition_by")):  # fmt: skip
        raise _Updating("ROW_NUMBER keeping the top rows of each key (Top-N, or the last row)")
    window.args["order"].append("expressions", exp.Ordered(this=exp.column("__sqlml_seq")))
    partition = tuple(shapes.unqualified(p).sql(dialect=Sqlml) for p in window.args["partition_by"])
    filter_ = inner.args.get("where")
    spec = DedupSpec(stream.time, partition, shapes.unqualified(filter_.this).sql(dialect=Sqlml) if filter_ else None)
    stars = shapes.reads_star(query) and shapes.reads_star(inner)
    return spec, inner, stars


def _temporal_joins(binder: Binder, query: exp.Expr) -> tuple[exp.Table, tuple[str, ...]] | None:
    """`JOIN t FOR SYSTEM_TIME AS OF s.ts ON ...` (Flink's temporal join against a versioned
    table: one whose PRIMARY KEY holds a TIMESTAMP column, the time each version starts, or a
    stream of versions, each event one, its time when it starts) becomes DuckDB's ASOF JOIN:
    each event meets the version valid at its time, never a later one. Returns a versioned
    stream's table node and key columns (those the ON condition equates), if it joins one."""
    versioned = None
    for join in list(query.find_all(exp.Join)):
        table = join.this
        version = table.args.get("version") if isinstance(table, exp.Table) else None
        if version is None:
            continue
        if (join.args.get("side") or "").upper() not in ("", "LEFT") or join.args.get("kind"):
            raise binder.error("A temporal join is an inner or LEFT JOIN.", table)
        stream = _stream_of(binder, table)
        if stream is not None:
            keys = _equated(join.args.get("on"), table.alias_or_name)
            if not keys:
                raise binder.error(f"A temporal join against stream '{stream.name}' needs the versions' key in its ON "
                                   "condition.", table, "... ON o.currency = r.currency")  # fmt: skip
            versioned = table, keys
        valid_from = stream.time if stream is not None else _version_time(binder, table)
        at = exp.GTE(this=version.expression.copy(), expression=exp.column(valid_from, table=table.alias_or_name))
        on = join.args.get("on")
        join.set("on", exp.and_(on, at) if on is not None else at)
        join.set("method", "ASOF")
        table.set("version", None)
    return versioned


def _equated(on: exp.Expr | None, alias: str) -> tuple[str, ...]:
    """The columns of `alias` that the ON condition sets equal to something else."""
    found = []
    for eq in on.find_all(exp.EQ) if on is not None else []:
        for mine, other in ((eq.this, eq.expression), (eq.expression, eq.this)):
            if isinstance(mine, exp.Column) and mine.table == alias and not (
                    isinstance(other, exp.Column) and other.table == alias):  # fmt: skip
                found.append(mine.name)
    return tuple(dict.fromkeys(found))


def _bind_temporal(
    binder: Binder,
    node: exp.Expr,
    query: exp.Expr,
    plain: list[exp.Table],
    versioned: tuple[exp.Table, tuple[str, ...]],
) -> StreamJob:
    """A temporal join of a stream's events with a stream of versions (see temporal.py)."""
    table, keys = versioned
    assert binder.streams is not None
    probes = [t for t in plain if t is not table]
    if len(probes) != 1 or probes[0].name.lower() == table.name.lower() or windows_in(query):
        raise binder.error("A temporal join against a stream reads two streams: the events, and the versions.",
                           table, "SELECT ... FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON "
                           "o.currency = r.currency")  # fmt: skip
    sink, target, copy_options, _, sink_stream = _sink(binder, node)
    try:
        shapes.check(query, lambda n: _kind(binder, n), table.parent if isinstance(table.parent, exp.Join) else None)
    except shapes.ShapeError as err:
        raise binder.error(err.message, err.node, err.hint) from None
    inputs, stand_ins = [], []
    for k, (t, role) in enumerate(((probes[0], "probe"), (table, "versions"))):
        stream = binder.streams.require(t.name)
        stand_in = sqlglot.parse_one(_stand_in(stream, k), dialect=Sqlml)
        stand_ins.append(stand_in.sql(dialect=Sqlml))
        alias = t.args.get("alias") or exp.TableAlias(this=exp.to_identifier(t.name))
        t.replace(exp.Subquery(this=stand_in, alias=alias))
        view = f"__sqlml_temporal_{role}"
        inputs.append(
            StreamInput(stream, None, view, probe=role == "probe", versions=keys if role == "versions" else None)
        )
    binder.rewrite_all(query)
    sql = query.sql(dialect=Sqlml)
    for rendered, inp in zip(stand_ins, inputs):
        sql = sql.replace(rendered, f"SELECT * FROM {inp.view}")
    return StreamJob(binder.statement.text, tuple(inputs), sql, sink, target, copy_options, sink_stream)


def windows_in(query: exp.Expr) -> bool:
    return query.find(ast.WindowTable) is not None


def _primary_key(binder: Binder, table: exp.Table) -> list[str]:
    """A DuckDB table's PRIMARY KEY columns (empty: it has none)."""
    assert binder.streams is not None
    found = binder.streams.con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'"
        " AND schema_name = coalesce(?, 'main')", [table.name, table.args["db"].name if table.args.get("db") else None],
    ).fetchall()  # fmt: skip
    return list(found[0][0]) if found else []


def _version_time(binder: Binder, table: exp.Table) -> str:
    """The TIMESTAMP column of a versioned table's PRIMARY KEY."""
    assert binder.streams is not None
    primary = _primary_key(binder, table)
    columns = binder.columns(f"SELECT * FROM {quote(table.name)}", table) if primary else {}
    times = [c for c in primary if str(columns.get(c, "")).upper().startswith("TIMESTAMP")]
    if len(times) != 1:
        raise binder.error(
            f"'{table.name}' is not a versioned table: FOR SYSTEM_TIME AS OF needs a PRIMARY KEY with one TIMESTAMP "
            "column, the time each version starts.", table,
            f"CREATE TABLE {table.name} (key ..., valid_from TIMESTAMP, ..., PRIMARY KEY (key, valid_from))",
        )  # fmt: skip
    return times[0]


def _outer(query: exp.Select, stand_ins: list[str], inputs: list[StreamInput]) -> tuple[str, str]:
    """A LEFT interval join's query with both sides' arrival numbers (for the runner to tell
    pairs from the left side's unpaired events), and the query that outputs its rows."""
    if not shapes.reads_star(query):
        query.select("__sqlml_seq_0", "__sqlml_seq_1", copy=False)
    sql = query.sql(dialect=Sqlml)
    for rendered_k, inp in zip(stand_ins, inputs):
        sql = sql.replace(rendered_k, f"SELECT * FROM {inp.view}")
    return sql, "SELECT * EXCLUDE (__sqlml_seq_0, __sqlml_seq_1) FROM __sqlml_out"


def _interval_join(binder: Binder, query: exp.Expr, plain: list[exp.Table]) -> tuple[exp.Join, tuple[int, int]] | None:
    """Two streams joined in the outermost SELECT with bounds on their times: the join and each
    side's reach (how long past its time an event can still pair: see interval_join.py)."""
    if not isinstance(query, exp.Select) or query.args.get("from_") is None:
        return None
    joins = [j for j in query.args.get("joins") or [] if j.this is plain[1]]
    if query.args["from_"].this is not plain[0] or len(joins) != 1:
        return None
    join = joins[0]
    a, b = (binder.streams.require(t.name) for t in plain)  # type: ignore[union-attr]
    on = join.args.get("on")
    found = interval_bounds(on, plain[0].alias_or_name, a.time, plain[1].alias_or_name, b.time) if on else None
    side = (join.args.get("side") or join.args.get("kind") or "").upper()
    if side not in ("", "INNER", "LEFT") or (found is None and side == "LEFT"):
        raise _Updating(f"a {side} JOIN of streams: a row without a partner is output with NULLs, then retracted "
                        "when one comes")  # fmt: skip
    if found is None:  # a regular join: every event is kept, as Flink's without a state TTL
        return join, (FOREVER, FOREVER)
    low, high = found
    if low > high:
        raise binder.error("The join's time bounds leave no interval: the lower is above the upper.", on)
    return join, (high, -low)


def _kind(binder: Binder, node: exp.Expr) -> shapes.Kind:
    """What a table or window function node reads, for the shape check."""
    if isinstance(node, ast.WindowTable):
        return shapes.Kind.WINDOWS if _stream_of(binder, node.args["table"]) else shapes.Kind.TABLE
    return shapes.Kind.ROWS if _stream_of(binder, node) else shapes.Kind.TABLE


def bind_continuous_source(binder: Binder, source: ast.QuerySource) -> tuple[StreamJob, dict[str, Any]]:
    """The stream job feeding a continuous TRAIN, and the columns its query yields.

    The query must read one window function, over a stream or (for a backtest) an ordinary
    table replayed in event-time order, and return rows (no aggregation). sqlml adds the
    window bounds and event time to its output (`__sqlml_ws`, `__sqlml_we`, `__sqlml_t`).
    """
    query = source.this
    windows = list(query.find_all(ast.WindowTable))
    if not windows:
        raise binder.error(
            "A continuous TRAIN (update, promote or rounds_per_window) needs a window function in its query.", query,
            "Read TABLE(TUMBLE|HOP|CUMULATE(TABLE clicks, DESCRIPTOR(ts), ...)) in the TRAIN's query.",
        )  # fmt: skip
    if len(windows) > 1:
        raise binder.error("A continuous TRAIN reads one window function.", windows[1])
    if (
        not isinstance(query, exp.Select)
        or query.args.get("group")
        or query.find(exp.AggFunc)
        or query.find(exp.Window)
    ):
        raise binder.error(
            "A continuous TRAIN needs a query that returns one row per event (no GROUP BY or aggregate).", query,
            "Aggregate in a view or an INSERT INTO first, then train on its rows.",
        )  # fmt: skip
    tvf = windows[0]
    if tvf.this == "SESSION":
        raise binder.error("A continuous TRAIN trains per TUMBLE, HOP or CUMULATE window, not SESSION.", tvf)
    table = tvf.args["table"]
    stream = binder.streams.get(table.name) if binder.streams is not None else None
    if stream is None:  # an ordinary table, replayed in event-time order as a bounded stream
        columns = binder.columns(f"SELECT * FROM {table.sql(dialect=Sqlml)}", table)
        time = binder.column(tvf.args["time"], columns, "time")
        stream = StreamDef(
            table.name.lower(), [(n, str(t)) for n, t in columns.items()], time, 0,
            {"connector": "table", "path": table.sql(dialect=Sqlml)},
        )  # fmt: skip
    spec = binder.window_spec(tvf, dict(stream.columns))
    labels = _label_join(binder, query, tvf, stream)
    # describe the query's output over an empty, typed stand-in for the window function
    typed = ", ".join(f"NULL::{t} AS {quote(n)}" for n, t in stream.columns)
    bounds = "NULL::TIMESTAMP AS window_start, NULL::TIMESTAMP AS window_end, NULL::TIMESTAMP AS window_time"
    tvf.set("rewrite", f"SELECT {typed}, {bounds} WHERE false")
    own = tvf.alias if labels else None  # with a second stream, the window's columns by its alias
    query.select(
        exp.alias_(exp.column("window_start", table=own), "__sqlml_ws"),
        exp.alias_(exp.column("window_end", table=own), "__sqlml_we"),
        exp.alias_(exp.column(spec.time, table=own), "__sqlml_t"),
        copy=False,
    )
    binder.rewrite_all(query)
    columns = binder.columns(query.sql(dialect=Sqlml), query)
    view = "__sqlml_fired_0"
    tvf.set("rewrite", f"SELECT * FROM {view}")
    sql = query.sql(dialect=Sqlml)
    inputs = [StreamInput(stream, spec, view)]
    if labels is not None:
        other, stand_in, (low, high) = labels
        sql = sql.replace(stand_in, f"SELECT * FROM {LABELS_VIEW}")
        inputs = [StreamInput(stream, spec, view, fire_delay=max(high, 0)),
                  StreamInput(other, None, LABELS_VIEW, lookup=(low, high))]  # fmt: skip
    return StreamJob(binder.statement.text, tuple(inputs), sql, Sink.CALL), columns


LABELS_VIEW = "__sqlml_labels"


def _label_join(
    binder: Binder, query: exp.Select, tvf: ast.WindowTable, stream: StreamDef
) -> tuple[StreamDef, str, tuple[int, int]] | None:
    """A continuous TRAIN's join of its window with a second stream whose events come later
    (purchases that label clicks), bounded in time: that stream, its stand-in's SQL, and the
    bounds [low, high] of its time less the window stream's. Each window then trains once the
    watermark has passed its end plus `high`, the labels' horizon, so its labels are final."""
    joins = [j for j in query.args.get("joins") or [] if _stream_of(binder, j.this) is not None]
    if not joins:
        return None
    assert binder.streams is not None
    join, table = joins[0], joins[0].this
    other = binder.streams.require(table.name)
    hint = (
        f"... FROM TABLE(HOP(TABLE {stream.name}, ...)) AS c LEFT JOIN {other.name} AS p ON p.k = c.k AND "
        f"p.{other.time} BETWEEN c.{stream.time} AND c.{stream.time} + INTERVAL '30' MINUTE"
    )
    if len(joins) > 1 or query.args["from_"].this is not tvf or other.name == stream.name or not tvf.alias:
        raise binder.error("A continuous TRAIN joins its window function (with an alias) to at most one other stream, "
                           "the one its labels come from.", table, hint)  # fmt: skip
    side = (join.args.get("side") or join.args.get("kind") or "").upper()
    on = join.args.get("on")
    found = interval_bounds(on, tvf.alias, stream.time, table.alias_or_name, other.time) if on else None
    if side not in ("", "INNER", "LEFT") or found is None:
        raise binder.error(
            f"A continuous TRAIN joins stream '{other.name}' with an inner or LEFT JOIN bounded in time: its labels "
            "are final only after a horizon, which the bounds give.", table, hint,
        )  # fmt: skip
    stand_in = sqlglot.parse_one(_stand_in(other, 1), dialect=Sqlml)
    alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
    table.replace(exp.Subquery(this=stand_in, alias=alias))
    return other, stand_in.sql(dialect=Sqlml), found
