"""DC (dense captions): ActivityNet Captions ``train.json``, one query per video.

The source is one JSON document mapping each video id to its timed events::

    {"v_QOlSCBRmfWY": {"duration": 82.73,
                       "timestamps": [[0.83, 19.86], [17.37, 60.81]],
                       "sentences": ["A young woman stands in a room.", " She starts to dance."]}, ...}

Each video becomes one item, its events one line each in file order, times in seconds::

    {"id": "v_QOlSCBRmfWY",
     "sentences": "[0.8s - 19.9s] A young woman stands in a room.\\n[17.4s - 60.8s] She starts to dance.",
     "image_ids": ["DC_IMG_v_QOlSCBRmfWY_0000", ..., "DC_IMG_v_QOlSCBRmfWY_0082"],
     "image_prefix": "DC_IMG_v_QOlSCBRmfWY_"}

Frames are sampled at one per second and numbered from 0, so a video of ``duration`` seconds
has frames ``0 .. ceil(duration) - 1``. Run it with ``python main.py --name DC``.
"""

import math

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class DC(AbstractDataset):
    frame_seconds = 1.0  # frames at one a second, numbered by the second: --images labels each
    scene = "DC"

    def __init__(self, name="DC", prompt_path="prompts/dc.json",
                 query_inputs_path="datasets/samples/dc/train.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # The source is a single JSON document, so it is json.load-ed whole; items are still
        # yielded one at a time.
        videos = load_json(path, "ActivityNet Captions file")
        if not isinstance(videos, dict):
            raise UserError(f"{path}: expected an object mapping video ids to annotations, "
                            f"found a {type(videos).__name__}")
        for video_id, video in videos.items():
            yield self._item(path, video_id, video)

    @staticmethod
    def _item(path, video_id, video):
        where = f"{path}: video {video_id!r}"
        if not isinstance(video, dict):
            raise UserError(f"{where} is a {type(video).__name__}, not an object")
        for key in ("duration", "timestamps", "sentences"):
            if key not in video:
                raise UserError(f"{where} has no {key!r}")
        duration, timestamps, sentences = video["duration"], video["timestamps"], video["sentences"]
        if not _number(duration) or duration <= 0:
            raise UserError(f"{where} has duration {duration!r}; it must be a positive number of seconds")
        if not isinstance(timestamps, list) or not isinstance(sentences, list):
            raise UserError(f"{where}: 'timestamps' and 'sentences' must be lists")
        if len(timestamps) != len(sentences):
            raise UserError(f"{where} has {len(timestamps)} timestamps but {len(sentences)} sentences")
        if not sentences:
            raise UserError(f"{where} has no events")
        lines = []
        for n, (span, sentence) in enumerate(zip(timestamps, sentences)):
            if not (isinstance(span, list) and len(span) == 2 and all(_number(t) for t in span)):
                raise UserError(f"{where}: timestamp {n} is {span!r}; expected [start, end] in seconds")
            if not isinstance(sentence, str):
                raise UserError(f"{where}: sentence {n} is a {type(sentence).__name__}, not a string")
            lines.append(f"[{span[0]:.1f}s - {span[1]:.1f}s] {sentence.strip()}")
        prefix = f"DC_IMG_{video_id}_"
        return {"id": video_id, "sentences": "\n".join(lines),
                "image_ids": [f"{prefix}{frame:04d}" for frame in range(math.ceil(duration))],
                "image_prefix": prefix}
