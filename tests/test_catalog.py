"""The catalog: versions, atomic writes, racing writers, bad names and corrupt files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import sqlml
from sqlml.catalog import Catalog

TRAIN = (
    "CREATE OR REPLACE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(200) AS t(i);"
    "TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 3) AS SELECT * FROM t;"
)


def test_versions_count_up_and_layout(con, catalog):
    con.execute(TRAIN)
    con.execute(TRAIN)
    assert Catalog(catalog).versions("m") == [1, 2]
    folder = catalog / "m" / "2"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.txt"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["version"] == 2 and meta["task"] == "binary"
    assert (folder / "model.txt").read_text().startswith("tree")
    assert not list(catalog.rglob(".tmp-*"))


def test_if_not_exists_skips(con, catalog):
    con.execute(TRAIN)
    out = con.sql("TRAIN MODEL IF NOT EXISTS m USING lightgbm_classifier LABEL y AS SELECT * FROM t").fetchall()
    assert "skipped" in out[0][0]
    assert Catalog(catalog).versions("m") == [1]


def test_drop_version_then_model_never_reuses_numbers(con, catalog):
    con.execute(TRAIN + TRAIN)
    assert con.sql("DROP MODEL m VERSION 2").fetchall() == [("m", 2, None)]
    con.execute(TRAIN)
    assert Catalog(catalog).versions("m") == [1, 3]
    con.execute("DROP MODEL m")
    assert Catalog(catalog).names() == []
    assert con.sql("DROP MODEL IF EXISTS m").fetchall()[0][0].startswith("Model 'm' does not exist")


@pytest.mark.slow
def test_two_processes_training_into_one_catalog(tmp_path):
    script = textwrap.dedent(
        f"""
        import sqlml
        con = sqlml.connect(catalog={str(tmp_path / "cat")!r})
        for _ in range(3):
            con.execute({TRAIN!r})
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert Catalog(tmp_path / "cat").versions("m") == [1, 2, 3, 4, 5, 6]
    assert {Catalog(tmp_path / "cat").get("m", v).meta["version"] for v in range(1, 7)} == set(range(1, 7))


def test_interrupted_train_leaves_nothing(con, catalog):
    con.execute("CREATE TABLE t AS SELECT i * 1.0 AS x, i % 2 = 0 AS y FROM range(5000) AS t(i)")

    def stop(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    con.set_progress(lambda name: stop)
    with pytest.raises(KeyboardInterrupt):
        con.execute("TRAIN MODEL m USING lightgbm_classifier LABEL y WITH (num_boost_round = 50) AS SELECT * FROM t")
    assert Catalog(catalog).names() == []
    assert not list(catalog.rglob("*.txt"))


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "x" * 200, "über"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(sqlml.CatalogError):
        Catalog(tmp_path).save(name, "tree", {})


def test_corrupt_and_incomplete_metadata_name_the_file(con, catalog):
    con.execute(TRAIN)
    meta = catalog / "m" / "1" / "meta.json"
    meta.write_text("[1, 2")
    with pytest.raises(sqlml.CatalogError, match="meta.json is corrupt"):
        con.sql("DESCRIBE MODEL m")
    meta.write_text('{"task": "binary"}')
    with pytest.raises(sqlml.CatalogError, match="lacks task, features or trainer"):
        con.sql("EXPLAIN MODEL m")


def test_catalog_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLML_CATALOG", str(tmp_path / "envcat"))
    con = sqlml.connect()
    con.execute(TRAIN)
    assert Catalog(tmp_path / "envcat").versions("m") == [1]


def test_no_pickle_anywhere():
    import pathlib

    source = "\n".join(p.read_text() for p in pathlib.Path(sqlml.__file__).parent.rglob("*.py"))
    assert "import pickle" not in source and "pickle.load" not in source and "joblib" not in source
