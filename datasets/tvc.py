"""TVC (TV show captions): TVC ``tvc_train_release.jsonl``, one query per clip.

The source has one JSON object per line, one line per captioned moment of a clip::

    {"vid_name": "friends_s01e03_seg02_clip_19", "duration": 61.12, "ts": [16.48, 33.87],
     "clip_id": 86603, "descs": [{"desc": "Rachel hands Ross a cup.", "type": "v", "desc_id": 109026}]}

Several lines share a ``vid_name`` (different moments of the same clip); they are joined into one
item, moments in time order (by ``ts``), one line per description::

    {"id": "friends_s01e03_seg02_clip_19",
     "sentences": "[16.5s - 33.9s] Rachel hands Ross a cup.\\n[40.2s - 47.0s] Ross drops the cup.",
     "image_ids": ["TVC_IMG_friends_s01e03_seg02_clip_19_0000", ..., "..._0015"],
     "image_prefix": "TVC_IMG_friends_s01e03_seg02_clip_19_"}

Every clip has 16 evenly spaced frames, numbered 0000 to 0015. Run it with ``python main.py --name TVC``.
"""

from syphus.dataset import AbstractDataset, iter_jsonl
from syphus.errors import UserError

FRAMES = 16


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TVC(AbstractDataset):
    scene = "TVC"

    def __init__(self, name="TVC", prompt_path="prompts/tvc.json",
                 query_inputs_path="datasets/samples/tvc/tvc_train_release.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # A first pass checks every line and whether each clip's lines are adjacent. If they are,
        # the second pass streams, holding one clip's lines at a time; else it holds all of them,
        # grouped by vid_name in order of first appearance.
        if self._grouped(path):
            name, moments = None, []
            for record in self._records(path):
                if record["vid_name"] != name and moments:
                    yield self._item(name, moments)
                    moments = []
                name = record["vid_name"]
                moments.append(record)
            if moments:
                yield self._item(name, moments)
        else:
            clips = {}
            for record in self._records(path):
                clips.setdefault(record["vid_name"], []).append(record)
            for name, moments in clips.items():
                yield self._item(name, moments)

    def _grouped(self, path):
        done, current = set(), None
        for record in self._records(path):
            name = record["vid_name"]
            if name != current:
                if name in done:
                    return False
                if current is not None:
                    done.add(current)
                current = name
        return True

    @staticmethod
    def _records(path):
        """The moments, line by line, each checked; raises a UserError naming the line."""
        for n, record in iter_jsonl(path, "TVC file"):
            where = f"{path}: line {n}"
            if not isinstance(record, dict):
                raise UserError(f"{where} is a {type(record).__name__}, not an object")
            name = record.get("vid_name")
            if not isinstance(name, str) or not name:
                raise UserError(f"{where} has vid_name {name!r}; expected a non-empty string")
            where = f"{where} (vid_name {name!r})"
            descs = record.get("descs")
            if not isinstance(descs, list) or not descs:
                raise UserError(f"{where} has descs {descs!r}; expected a list of {{'desc': ...}}")
            for i, d in enumerate(descs):
                if not isinstance(d, dict) or not isinstance(d.get("desc"), str):
                    raise UserError(f"{where}: descs[{i}] has no 'desc' string")
            ts = record.get("ts")
            if ts is not None and not (isinstance(ts, list) and len(ts) == 2 and all(map(_number, ts))):
                raise UserError(f"{where} has ts {ts!r}; expected [start, end] in seconds")
            yield record

    @staticmethod
    def _item(name, moments):
        # time order; a moment without "ts" goes first, keeping file order among equals
        moments = sorted(moments, key=lambda m: tuple(m.get("ts") or (-1, -1)))
        lines = []
        for m in moments:
            stamp = f"[{m['ts'][0]:.1f}s - {m['ts'][1]:.1f}s] " if m.get("ts") else ""
            lines += [f"{stamp}{d['desc'].strip()}" for d in m["descs"]]
        prefix = f"TVC_IMG_{name}_"
        return {"id": name, "sentences": "\n".join(lines),
                "image_ids": [f"{prefix}{frame:04d}" for frame in range(FRAMES)],
                "image_prefix": prefix}
