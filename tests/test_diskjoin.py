"""release/diskjoin: which referenced ids are absent from the present ones, per group, through buckets on disk."""

from __future__ import annotations

from syphus.release.diskjoin import DiskJoin


def test_missing_references_per_group_past_the_in_memory_buffers():
    j = DiskJoin(buckets=4)
    try:
        for i in range(30_000):  # more than a bucket buffers: the keys go to disk and are joined from there
            j.present(f"DC_IMG_{i:08d}")
        for i in range(29_990, 30_010):
            j.reference(f"DC_IMG_{i:08d}")
        j.reference("DC_IMG_00000001", group="train")
        j.reference("DC_IMG_99999999", group="train")
        j.reference("DC_IMG_99999999", group="train")
        missing = j.missing()
        assert missing == {j.key(f"DC_IMG_{i:08d}") for i in range(30_000, 30_010)}
        assert j.missing_counts["refs"] == 10
        assert j.missing("train") == {j.key("DC_IMG_99999999")} and j.missing_counts["train"] == 2
        assert j.missing("never") == set() and j.missing_counts["never"] == 0
    finally:
        j.close()


def test_missing_keeps_at_most_limit_keys_but_counts_them_all():
    j = DiskJoin()
    try:
        for i in range(50):
            j.reference(f"x{i}")
        assert len(j.missing(limit=5)) == 5 and j.missing_counts["refs"] == 50
    finally:
        j.close()
