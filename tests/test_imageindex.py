"""The image index: ids looked up in release image files (JSON and Parquet) without reading them whole."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from syphus.errors import UserError
from syphus.engine import imageindex, imagevalues, parquet
from syphus.engine.imageindex import ImageIndex
from syphus.engine.imagevalues import read_row_group

pa, pq = parquet.modules("these tests")


def fake_png(n: int, size: int = 600) -> bytes:
    """Bytes that start like a PNG and differ per n (the index never decodes the picture)."""
    body = (n.to_bytes(4, "big") + b"\xfb\xff\xbf") * (size // 7)  # 0xff makes '/' in base64
    return b"\x89PNG\r\n\x1a\n" + body


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


ODD_IDS = ["VST_IMG_9", "VST_IMG_10", "a\"quote", "back\\slash", "ünïcødé_IMG", "tab\tid", "brace}{,:[]",
           "line\u2028sep", "emoji_\U0001F600", "a/slash", "VST_IMG_1"]


def odd_json(path: Path, indent: int | None = None, slashes: bool = False) -> dict[str, bytes]:
    """A {id: base64} file with ids in no order and characters JSON must escape; returns id -> bytes."""
    images = {image_id: fake_png(n, 90 + 37 * n) for n, image_id in enumerate(ODD_IDS)}
    text = json.dumps({k: b64(v) for k, v in images.items()}, indent=indent)
    if slashes:  # some writers escape '/' in base64 as '\/'
        text = text.replace("/", "\\/")
    path.write_text(text, encoding="utf-8")
    return images


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 20])
def test_json_ids_in_odd_order_with_escapes_are_found_at_any_chunk_size(tmp_path, monkeypatch, indent, chunk):
    monkeypatch.setattr(imageindex, "CHUNK", chunk)
    path = tmp_path / "VST.json"
    images = odd_json(path, indent=indent, slashes=indent is None)
    assert "\\/" in path.read_text() or indent is not None
    with ImageIndex.open(path) as index:
        assert index.kind == "json" and index.built and len(index) == len(images)
        for image_id, data in images.items():
            assert image_id in index
            assert index.get(image_id) == data
        assert index.get("VST_IMG_2") is None and "VST_IMG_2" not in index and 5 not in index
        assert index.get_many(["VST_IMG_1", "nope", "tab\tid"]) == [images["VST_IMG_1"], None, images["tab\tid"]]


def test_json_values_of_other_shapes(tmp_path):
    png = fake_png(7)
    path = tmp_path / "X.json"
    # a data URL, a {"base64": ...} object (brackets and quotes inside strings), null, a number
    path.write_text('{"url": "data:image/png;base64,' + b64(png) + '", '
                    '"obj": {"name": "x]}\\"{", "base64": "' + b64(png) + '", "list": [1, [2, {}]]}, '
                    '"none": null, "num": -1.5e3}')
    with ImageIndex.open(path) as index:
        assert index.get("url") == png and index.get("obj") == png
        assert len(index) == 4 and "none" in index and index.missing(["none", "num"]) == []
        for image_id, says in [("none", "null"), ("num", "float")]:  # no image, yet not "missing" either
            with pytest.raises(imagevalues.BadImage, match=f"'{image_id}' cannot be decoded: .*{says}"):
                index.get(image_id)


def test_a_value_far_larger_than_a_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(imageindex, "CHUNK", 4096)
    big = fake_png(3, 300_000)
    path = tmp_path / "DC.json"
    path.write_text(json.dumps({"small": b64(fake_png(1)), "big": b64(big), "after": b64(fake_png(2))}))
    with ImageIndex.open(path) as index:
        assert index.get("big") == big and index.get("after") == fake_png(2)


def test_json_indexing_holds_a_chunk_not_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(imageindex, "CHUNK", 64 << 10)
    path = tmp_path / "E4D.json"
    with path.open("w") as f:  # ~11 MB of base64, written a member at a time
        f.write("{")
        for n in range(2000):
            f.write(("," if n else "") + json.dumps(f"E4D_IMG_{n:08d}") + ": " + json.dumps(b64(fake_png(n, 4000))))
        f.write("}")
    tracemalloc.start()
    try:
        with ImageIndex.open(path) as index:
            got = index.get_many([f"E4D_IMG_{n:08d}" for n in (1999, 0, 1000)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [fake_png(1999, 4000), fake_png(0, 4000), fake_png(1000, 4000)]
    assert path.stat().st_size > 10_000_000 and peak < 1_500_000, peak


def test_missing_keeps_the_given_order_and_names_each_id_once(tmp_path, monkeypatch):
    monkeypatch.setattr(imageindex, "QUERY", 3)  # several batches
    path = tmp_path / "VST.json"
    odd_json(path)
    asked = ["x1", "VST_IMG_1", "x2", "x1", "a\"quote", "x3", "x4", "VST_IMG_9", "x5"]
    with ImageIndex.open(path) as index:
        assert index.missing(iter(asked)) == ["x1", "x2", "x3", "x4", "x5"]
        assert index.missing([]) == []


def test_the_index_is_reused_and_rebuilt_when_the_file_changes(tmp_path):
    path = tmp_path / "SD.json"
    path.write_text(json.dumps({"SD_IMG_00001_1": b64(fake_png(1))}))
    with ImageIndex.open(path) as index:
        assert index.built and index.index_path == tmp_path / "SD.json.index.sqlite"
    with ImageIndex.open(path) as index:
        assert not index.built and index.get("SD_IMG_00001_1") == fake_png(1)
    # the same size, other content, another mtime: indexed again
    st = path.stat()
    path.write_text(json.dumps({"SD_IMG_00002_1": b64(fake_png(1))}))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert path.stat().st_size == st.st_size
    with ImageIndex.open(path) as index:
        assert index.built and "SD_IMG_00002_1" in index and "SD_IMG_00001_1" not in index
    # a damaged index file is built again, not trusted
    (tmp_path / "SD.json.index.sqlite").write_bytes(b"not sqlite at all")
    with ImageIndex.open(path) as index:
        assert index.built and "SD_IMG_00002_1" in index
    assert not list(tmp_path.glob("*.tmp"))


def test_cache_dir_and_a_read_only_folder(tmp_path, monkeypatch):
    path = tmp_path / "data" / "LA.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"LA_IMG_000000498792": b64(fake_png(5))}))
    with ImageIndex.open(path, cache_dir=tmp_path / "cache") as index:
        assert index.index_path.parent == tmp_path / "cache" and index.index_path.name.startswith("LA.json.")
        assert index.get("LA_IMG_000000498792") == fake_png(5)
    assert not (path.parent / "LA.json.index.sqlite").exists()
    # a folder that cannot be written: the temp dir (root may write anywhere, so the check is faked)
    monkeypatch.setattr(imageindex.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(imageindex.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    with ImageIndex.open(path) as index:
        assert index.built and index.index_path.parent == tmp_path / "tmp" / "syphus-imageindex"
        assert "LA_IMG_000000498792" in index
    with ImageIndex.open(path) as index:
        assert not index.built


def test_an_index_already_next_to_a_file_in_a_read_only_folder_is_used(tmp_path, monkeypatch):
    path = tmp_path / "LA.json"
    path.write_text(json.dumps({"LA_IMG_1": b64(fake_png(5))}))
    ImageIndex.open(path).close()
    monkeypatch.setattr(imageindex.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(imageindex.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    with ImageIndex.open(path) as index:
        assert not index.built and index.index_path == tmp_path / "LA.json.index.sqlite"
    assert not (tmp_path / "tmp").exists()


def test_a_cache_dir_that_cannot_be_made(tmp_path):
    path = tmp_path / "LA.json"
    path.write_text("{}")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="cannot create the image index folder.*cache_dir"):
        ImageIndex.open(path, cache_dir=tmp_path / "a_file" / "cache")


def test_ids_that_no_index_can_hold_are_missing(tmp_path):
    path = tmp_path / "VST.json"
    odd_json(path)
    with ImageIndex.open(path) as index:
        assert index.get("lone\ud800") is None and "lone\ud800" not in index
        assert index.missing(["lone\ud800", "VST_IMG_1", "x"]) == ["lone\ud800", "x"]


@pytest.mark.parametrize("text, says", [
    ('{"a": "aGk=", "b": "aGk', "a string that never ends"),
    ('{"a": "aGk=", "b"', "expected ':'"),
    ('{"a": "aGk=" "b": "aGk="}', "expected ',' or '}'"),
    ('{"a": "aGk=",}', "a trailing comma"),
    ('{"a": }', "a value is missing"),
    ('{"a": nope}', "not JSON"),
    ('{"a": "aGk="} {"b": 1}', "more text after"),
    ('{"a": {"b": [1, 2}', "never ends"),
    ('{a: "aGk="}', "expected a quoted image id"),
    ('{"a": "aGk=", ', "expected a quoted image id"),
    ('{"bad\\x": "aGk="}', "not a valid JSON string"),
    ('{"lone\\ud800": "aGk="}', "not a valid JSON string"),
])
def test_corrupt_json_names_the_file_and_the_byte(tmp_path, text, says):
    path = tmp_path / "TVC.json"
    path.write_text(text)
    with pytest.raises(UserError, match=says) as e:
        ImageIndex.open(path)
    assert str(path) in str(e.value) and "at byte" in str(e.value)
    assert not list(tmp_path.glob("*.sqlite")) and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("content, says", [
    (b"", "an empty file"),
    (b"hello world", "neither a JSON object"),
    (b"[1, 2]", "neither a JSON object"),
    (b"PAR1" + b"\x00" * 100, "not a readable Parquet file"),
])
def test_files_of_no_known_kind(tmp_path, content, says):
    path = tmp_path / "DC.parquet"
    path.write_bytes(content)
    with pytest.raises(UserError, match=says) as e:
        ImageIndex.open(path)
    assert str(path) in str(e.value)


def test_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(UserError, match="image file not found"):
        ImageIndex.open(tmp_path / "nope.json")
    with pytest.raises(UserError, match="a folder"):
        ImageIndex.open(tmp_path)


# Parquet


def write_parquet(path: Path, n: int, rows: int, size: int = 600) -> None:
    """The trainer's form (RowGroupWriter, id = the pandas index, base64 column), ``rows`` per row group."""
    w = parquet.RowGroupWriter(path, pa.schema([("id", pa.string()), ("base64", pa.string())]), rows=rows, index="id")
    for i in range(n):
        w.add(f"DC_IMG_v{i // 16:05d}_{i % 16:04d}", b64(fake_png(i, size)))
    w.close()


def image_id(i: int) -> str:
    return f"DC_IMG_v{i // 16:05d}_{i % 16:04d}"


class CountingReader:
    """``read_group`` that records what it read: (group, columns, bytes of the table)."""

    def __init__(self):
        self.calls: list[tuple[int, tuple[str, ...], int]] = []
        self.arrow_bytes: list[int] = []

    def __call__(self, pf, group, columns):
        table = read_row_group(pf, group, columns)
        self.calls.append((group, tuple(columns), table.nbytes))
        self.arrow_bytes.append(pa.total_allocated_bytes())
        return table

    def groups(self, column: str) -> list[int]:
        return [g for g, cols, _ in self.calls if cols == (column,)]


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pq") / "DC.parquet"
    write_parquet(path, 10_000, rows=2500)  # 4 row groups, ~8.2 MB of base64
    return path


def test_parquet_of_ten_thousand_images_reads_only_the_row_groups_it_needs(ten_thousand, tmp_path):
    assert pq.ParquetFile(ten_thousand).num_row_groups == 4
    reader = CountingReader()
    tracemalloc.start()
    try:
        with ImageIndex.open(ten_thousand, cache_dir=tmp_path, read_group=reader, cache_groups=2) as index:
            # indexing read the id column of each row group, never an image
            assert index.kind == "parquet" and index.built and len(index) == 10_000
            assert reader.groups("id") == [0, 1, 2, 3] and not reader.groups("base64")
            wanted = [9999, 2500, 7777, 2501, 9000, 4999]  # row groups 3, 1, 3, 1, 3, 1
            for i in wanted:
                assert index.get(image_id(i)) == fake_png(i)
            assert index.get("DC_IMG_nope") is None
            assert index.missing([image_id(0), "DC_IMG_nope", image_id(9999)]) == ["DC_IMG_nope"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reader.groups("base64") == [3, 1]  # each needed group once, the others never
    assert index.groups_read == 2
    one_group = max(nbytes for _, cols, nbytes in reader.calls if cols == ("base64",))
    total = sum(len(b64(fake_png(i))) for i in range(10_000))
    assert one_group < total / 3
    # Python's side: ids of one row group at a time; Arrow's side: at most the two cached groups
    assert peak < 1_500_000, peak
    assert max(reader.arrow_bytes) < 2.5 * one_group + 2_000_000, (reader.arrow_bytes, one_group)


def test_parquet_lru_is_bounded_by_count_and_bytes(ten_thousand, tmp_path):
    reader = CountingReader()
    with ImageIndex.open(ten_thousand, cache_dir=tmp_path, read_group=reader, cache_groups=2) as index:
        for i in (0, 2500, 5000, 0, 5000):  # groups 0, 1, 2, then 0 again (evicted), 2 (kept)
            assert index.get(image_id(i)) == fake_png(i)
        assert reader.groups("base64") == [0, 1, 2, 0]
    reader = CountingReader()
    with ImageIndex.open(ten_thousand, cache_dir=tmp_path, read_group=reader, cache_bytes=1) as index:
        assert not index.built  # the index of the test above is reused
        for i in (0, 1, 2500, 2501, 0):  # only the last group read is kept
            index.get(image_id(i))
        assert reader.groups("base64") == [0, 1, 0] and not reader.groups("id")


def test_get_many_reads_each_row_group_once_in_file_order(ten_thousand, tmp_path):
    reader = CountingReader()
    with ImageIndex.open(ten_thousand, cache_dir=tmp_path, read_group=reader, cache_groups=1) as index:
        ids = [image_id(9000), image_id(10), "missing", image_id(5000), image_id(9001), image_id(11)]
        got = index.get_many(ids)
    assert got == [fake_png(9000), fake_png(10), None, fake_png(5000), fake_png(9001), fake_png(11)]
    assert reader.groups("base64") == [0, 2, 3]


def test_parquet_agrees_with_how_the_trainer_reads_it(ten_thousand, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(ten_thousand)
    with ImageIndex.open(ten_thousand, cache_dir=tmp_path) as index:
        for i in (0, 4321, 9999):
            assert index.get(image_id(i)) == base64.b64decode(frame.loc[image_id(i)]["base64"])


def test_parquet_written_by_pandas_and_older_shapes(tmp_path):
    pd = pytest.importorskip("pandas")
    images = {f"SN_IMG_scene{n:04d}_00_color_{n:06d}": fake_png(n) for n in range(5)}
    # an unnamed pandas index (__index_level_0__) and a base64 column
    unnamed = tmp_path / "SN.parquet"
    pd.DataFrame({"base64": [b64(v) for v in images.values()]}, index=list(images)).to_parquet(unnamed)
    # an older shape: a plain image_id column and raw image bytes in 'image'
    raw = tmp_path / "SN_raw.parquet"
    pq.write_table(pa.table({"image_id": list(images), "image": list(images.values())}), raw)
    for path in (unnamed, raw):
        with ImageIndex.open(path) as index:
            assert {k: index.get(k) for k in images} == images and len(index) == 5


def test_parquet_rows_without_an_id_are_skipped(tmp_path):
    path = tmp_path / "X.parquet"
    pq.write_table(pa.table({"id": ["a", None, "c"], "base64": [b64(fake_png(n)) for n in range(3)]}), path)
    with ImageIndex.open(path) as index:
        assert len(index) == 2 and index.get("c") == fake_png(2) and index.get("None") is None


def test_parquet_without_an_image_column(tmp_path):
    path = tmp_path / "X.parquet"
    pq.write_table(pa.table({"id": ["a"], "caption": ["a dog"]}), path)
    with pytest.raises(UserError, match="an image column") as e:
        ImageIndex.open(path)
    assert str(path) in str(e.value)


def test_a_damaged_row_group_names_the_file(tmp_path):
    path = tmp_path / "DC.parquet"
    write_parquet(path, 40, rows=10)

    def broken(pf, group, columns):
        if columns == ["base64"] and group == 2:
            raise OSError("Corrupt snappy compressed data")
        return read_row_group(pf, group, columns)

    with ImageIndex.open(path, read_group=broken) as index:
        assert index.get(image_id(0)) == fake_png(0)
        with pytest.raises(UserError, match="row group 2 cannot be read") as e:
            index.get(image_id(25))
    assert str(path) in str(e.value)


def test_a_json_file_changed_under_an_open_index(tmp_path):
    path = tmp_path / "VST.json"
    odd_json(path)
    with ImageIndex.open(path) as index:
        path.write_text("{}")
        with pytest.raises(UserError, match="changed while open"):
            index.get("VST_IMG_1")


def test_a_value_that_is_no_json_string_fails_when_read(tmp_path):
    path = tmp_path / "VST.json"
    path.write_bytes(b'\xef\xbb\xbf {"ok": "' + b64(fake_png(1)).encode() + b'", "bad": "line\nbreak"}')  # after a BOM
    with ImageIndex.open(path) as index:
        assert index.get("ok") == fake_png(1)
        with pytest.raises(UserError, match="'bad' at byte .* is not valid JSON") as e:
            index.get("bad")
    assert str(path) in str(e.value)


def test_the_values_are_the_images_bytes_whatever_space_surrounds_them(tmp_path):
    path = tmp_path / "VST.json"
    values = {"a": b64(fake_png(1)), "b": "  " + b64(fake_png(2)) + "\n"}
    path.write_text(json.dumps(values))
    with ImageIndex.open(path) as index:
        assert [index.get(k) for k in values] == [fake_png(1), fake_png(2)]


def test_get_many_asks_the_index_once_for_many_ids_and_keeps_their_order(tmp_path, monkeypatch):
    monkeypatch.setattr(imageindex, "QUERY", 3)  # several statements, and an id repeated across them
    images = {f"VST_IMG_{n}": fake_png(n) for n in range(8)}
    path = tmp_path / "VST.json"
    path.write_text(json.dumps({i: b64(v) for i, v in images.items()}))
    ids = ["VST_IMG_7", "nope", "VST_IMG_0", "VST_IMG_7", "lone\ud800", "VST_IMG_3", "VST_IMG_5", "VST_IMG_1"]
    with ImageIndex.open(path) as index:
        assert index.get_many(ids) == [images.get(i) for i in ids]
        assert index.get_many(iter(ids)) == [index.get(i) for i in ids]  # any iterable, same as one by one
        assert index.get_many([]) == []


def test_get_many_refuses_an_id_the_file_repeats(tmp_path):
    path = tmp_path / "VST.json"
    path.write_text('{"a": "' + b64(fake_png(1)) + '", "b": "' + b64(fake_png(2)) + '", "a": "'
                    + b64(fake_png(3)) + '"}')
    with ImageIndex.open(path, allow_repeats=True) as index:
        assert index.get_many(["b"]) == [fake_png(2)]
        with pytest.raises(imagevalues.BadImage, match="'a' appears 2 times"):
            index.get_many(["b", "a"])
