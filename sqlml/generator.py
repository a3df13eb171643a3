"""How sqlml's own statements and table functions are written back as SQL text (the
Generator's transforms in sqlml.dialect): for messages, the REPL's history and tests that
parse what they print.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from sqlml import ast


def train_sql(gen: Any, e: ast.Train) -> str:
    parts = ["TRAIN MODEL", "IF NOT EXISTS" if e.args.get("exists") else "", gen.sql(e, "this")]
    parts += ["USING", gen.sql(e, "trainer")]
    for key in ("label", "group", "weight"):
        if e.args.get(key):
            parts += [key.upper(), gen.sql(e, key)]
    for key in ("text", "transform", "features", "exclude"):
        if e.args.get(key):
            parts += [key.upper(), f"({gen.expressions(e, key, flat=True)})"]
    if e.args.get("params"):
        params = ", ".join(f"{p.this.sql()} = {gen.sql(p, 'expression')}" for p in e.args["params"])
        parts += ["WITH", f"({params})"]
    parts += ["AS", e.args["source"].args["text"]]
    return " ".join(p for p in parts if p)


def options_sql(gen: Any, options: list[exp.Expr] | None) -> str:
    return "".join(f", {p.this.sql()} => {gen.sql(p, 'expression')}" for p in options or [])


def model_function_sql(gen: Any, e: ast.ModelFunction) -> str:
    args = [gen.sql(e, "model")] if e.args.get("model") else []
    if e.args.get("source"):
        args.append(gen.sql(e, "source"))
    args += [gen.sql(v) for v in e.args.get("values") or []]
    return f"{e.this}({', '.join(args)}{options_sql(gen, e.args.get('options'))})"


def create_model_sql(gen: Any, e: ast.CreateModel) -> str:
    head = "CREATE " + ("OR REPLACE " if e.args.get("replace") else "") + "MODEL "
    head += ("IF NOT EXISTS " if e.args.get("exists") else "") + gen.sql(e, "this")
    if e.args.get("transform"):
        head += f" TRANSFORM ({gen.expressions(e, 'transform', flat=True)})"
    options = ", ".join(p.this.sql() + " = " + gen.sql(p, "expression") for p in e.args["options"])
    source = f" AS {e.args['source'].args['text']}" if e.args.get("source") else ""
    return f"{head} OPTIONS ({options}){source}"


def with_sql(gen: Any, params: list[exp.Expr] | None) -> str:
    if not params:
        return ""
    return " WITH (" + ", ".join(p.this.sql() + " = " + gen.sql(p, "expression") for p in params) + ")"


def import_sql(gen: Any, e: ast.ImportModel) -> str:
    exists = "IF NOT EXISTS " if e.args.get("exists") else ""
    return f"IMPORT MODEL {exists}{gen.sql(e, 'this')} FROM {gen.sql(e, 'path')}" + with_sql(gen, e.args.get("params"))


def create_stream_sql(gen: Any, e: ast.CreateStream) -> str:
    head = (
        "CREATE "
        + ("OR REPLACE " if e.args.get("replace") else "")
        + "STREAM "
        + ("IF NOT EXISTS " if e.args.get("exists") else "")
    )
    cols = [f"{gen.sql(c, 'this')} {gen.sql(c, 'kind')}" for c in e.args["columns"]]
    delay = gen.sql(e, "delay")
    cols.append(f"WATERMARK FOR {gen.sql(e, 'time')} AS {delay}")
    options = ", ".join(f"{p.this.sql()} = {gen.sql(p, 'expression')}" for p in e.args.get("options") or [])
    return f"{head}{gen.sql(e, 'this')} ({', '.join(cols)})" + (f" WITH ({options})" if options else "")


def window_table_sql(gen: Any, e: ast.WindowTable) -> str:
    alias = f" AS {gen.sql(e, 'alias')}" if e.args.get("alias") else ""
    if e.args.get("rewrite"):
        return f"({e.args['rewrite']}){alias}"
    partition = f" PARTITION BY {gen.expressions(e, 'partition', flat=True)}" if e.args.get("partition") else ""
    sizes = ", ".join(gen.sql(s) for s in e.args["sizes"])
    return f"TABLE({e.this}(TABLE {gen.sql(e, 'table')}{partition}, DESCRIPTOR({gen.sql(e, 'time')}), {sizes})){alias}"


def set_cluster_sql(gen: Any, e: ast.SetCluster) -> str:
    return f"SET cluster = {gen.sql(e, 'this')}" if e.args.get("this") else "RESET cluster"
