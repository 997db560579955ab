"""engine/parquet: the one row-group writer (the id as the pandas index, groups by rows or bytes,
all or nothing) and the one reader (that shape and older ones)."""

from __future__ import annotations

import pytest

from syphus.engine.parquet import RowGroupWriter, ids, index_problem, items, modules

pa, pq = modules("the Parquet tests")
SCHEMA = pa.schema([("id", pa.string()), ("base64", pa.string())])


def test_rows_go_out_in_groups_by_count_or_by_bytes(tmp_path):
    by_rows = RowGroupWriter(tmp_path / "a.parquet", SCHEMA, rows=2, index="id")
    for n in range(5):
        by_rows.add(f"DC_IMG_{n}", "aGk=")
    by_rows.close()
    assert pq.ParquetFile(tmp_path / "a.parquet").num_row_groups == 3 and by_rows.groups == 3
    by_bytes = RowGroupWriter(tmp_path / "b.parquet", SCHEMA, rows=1000, max_bytes=10, index="id")
    for n in range(4):
        by_bytes.add(f"DC_IMG_{n}", "aGk=", nbytes=6)  # the second row of each group passes 10 bytes
    by_bytes.close()
    assert by_bytes.groups == 2
    assert list(ids(tmp_path / "b.parquet")) == [f"DC_IMG_{n}" for n in range(4)]
    assert dict(items(tmp_path / "b.parquet"))["DC_IMG_3"] == "aGk="


def test_an_empty_table_still_has_a_row_group_and_its_index(tmp_path):
    w = RowGroupWriter(tmp_path / "e.parquet", SCHEMA, rows=10, index="id")
    w.close()
    assert pq.ParquetFile(tmp_path / "e.parquet").num_row_groups == 1
    assert list(ids(tmp_path / "e.parquet")) == [] and index_problem(tmp_path / "e.parquet") is None


def test_abort_leaves_the_old_table(tmp_path):
    path = tmp_path / "DC.parquet"
    first = RowGroupWriter(path, SCHEMA, rows=10, index="id")
    first.add("DC_IMG_old", "b2xk")
    first.close()
    second = RowGroupWriter(path, SCHEMA, rows=1, index="id")
    second.add("DC_IMG_new", "bmV3")  # a group already written to the tmp file
    second.abort()
    assert list(ids(path)) == ["DC_IMG_old"] and sorted(p.name for p in tmp_path.iterdir()) == ["DC.parquet"]


def test_an_older_file_without_index_metadata_is_read_and_named(tmp_path):
    path = tmp_path / "old.parquet"
    pq.write_table(pa.table({"image_id": ["LA_IMG_1"], "image": ["aGk="]}), path)
    assert list(ids(path)) == ["LA_IMG_1"] and list(items(path)) == [("LA_IMG_1", "aGk=")]
    assert "not the table's index" in index_problem(path)  # a trainer's .loc[id] would find nothing: said


def test_a_row_missing_a_value_is_refused(tmp_path):
    w = RowGroupWriter(tmp_path / "bad.parquet", SCHEMA, rows=1, index="id")
    with pytest.raises(ValueError):
        w.add("DC_IMG_0")
    w.abort()
    assert list(tmp_path.iterdir()) == []
