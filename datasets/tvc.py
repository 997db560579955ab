"""TVC (TV show captions): TVC ``tvc_train_release.jsonl``, one query per clip.

The source has one JSON object per line, one line per captioned moment of a clip::

    {"vid_name": "friends_s01e03_seg02_clip_19", "duration": 61.12, "ts": [16.48, 33.87],
     "clip_id": 86603, "descs": [{"desc": "Rachel hands Ross a cup.", "type": "v", "desc_id": 109026}]}

A clip has several lines (its moments), not always one after the other. They are joined into one
item, moments in time order (by the start of ``ts``; equal starts, and moments without ``ts``,
which come first, keep file order), one line per description; empty descriptions are left out::

    {"id": "friends_s01e03_seg02_clip_19",
     "sentences": "[16.5s - 33.9s] Rachel hands Ross a cup.\\n[40.2s - 47.0s] Ross drops the cup.",
     "image_ids": ["TVC_IMG_friends_s01e03_seg02_clip_19_0000", ..., "..._0015"],
     "image_prefix": "TVC_IMG_friends_s01e03_seg02_clip_19_"}

Clips come in the order of their first line. The file is read in one pass, each line checked and kept
as a small tuple (start, end, descriptions) in a dict by ``vid_name``: for the train release (about
10^5 lines) that is a few tens of MB, and a clip is never cut in two by an unsorted file.
The public test release (``tvc_test_public_release.jsonl``) has no ``descs`` and is refused.
MIMIC-IT used this same file, so there is no other format to accept.

Every clip has 16 evenly spaced frames, numbered 0000 to 0015. Run it with ``python main.py --name TVC``.
"""

from syphus.dataset import AbstractDataset, iter_jsonl
from syphus.errors import UserError
from syphus.engine.scenes import frame_id, frame_prefix

FRAMES = 16
TEST_RELEASE = "tvc_test_public_release.jsonl"


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TVC(AbstractDataset):
    scene = "TVC"

    def __init__(self, name="TVC", prompt_path="prompts/tvc.json",
                 query_inputs_path="datasets/samples/tvc/tvc_train_release.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        clips = {}  # vid_name -> [(start or None, end or None, (desc, ...)), ...] in file order
        for n, record in iter_jsonl(path, "TVC file"):
            name, moment = self._moment(path, n, record, first=not clips)
            clips.setdefault(name, []).append(moment)
        for name, moments in clips.items():
            lines = self._lines(moments)
            if lines:
                yield {"id": name, "sentences": "\n".join(lines),
                       "image_ids": [frame_id("TVC", name, k) for k in range(FRAMES)],
                       "image_prefix": frame_prefix("TVC", name)}

    @staticmethod
    def _moment(path, n, record, first):
        """``(vid_name, (start, end, descriptions))`` of line ``n``; raises a UserError naming the line."""
        where = f"{path}: line {n}"
        if not isinstance(record, dict):
            raise UserError(f"{where} is a {type(record).__name__}, not an object")
        name = record.get("vid_name")
        if not isinstance(name, str) or not name:
            raise UserError(f"{where} has vid_name {name!r}; expected a non-empty string")
        where = f"{where} (vid_name {name!r})"
        if "descs" not in record:
            if first:
                raise UserError(f"{where} has no 'descs': this is the TVC test release ({TEST_RELEASE}), "
                                "which has no descriptions to make queries from; pass tvc_train_release.jsonl "
                                "(or tvc_val_release.jsonl) with -in")
            raise UserError(f"{where} has no 'descs'; every line of a TVC train or val release has a list of "
                            "{'desc': ...}")
        descs = record["descs"]
        if not isinstance(descs, list) or not descs:
            raise UserError(f"{where} has descs {descs!r}; expected a list of {{'desc': ...}}")
        for i, d in enumerate(descs):
            if not isinstance(d, dict) or not isinstance(d.get("desc"), str):
                raise UserError(f"{where}: descs[{i}] has no 'desc' string")
        ts = record.get("ts")
        if ts is not None and not (isinstance(ts, list) and len(ts) == 2 and all(map(_number, ts))):
            raise UserError(f"{where} has ts {ts!r}; expected [start, end] in seconds")
        start, end = ts if ts is not None else (None, None)
        return name, (start, end, tuple(d["desc"].strip() for d in descs))

    @staticmethod
    def _lines(moments):
        """``[start - end] description`` lines, moments by start time (those without ``ts`` first)."""
        moments = sorted(moments, key=lambda m: (m[0] is not None, m[0] or 0))
        lines = []
        for start, end, descs in moments:
            stamp = f"[{start:.1f}s - {end:.1f}s] " if start is not None else ""
            lines += [f"{stamp}{d}" for d in descs if d]
        return lines
