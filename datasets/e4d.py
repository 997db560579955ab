"""E4D: first-person questions and answers for someone wearing AR glasses (Ego4D narrations).

Reads the processed Ego4D narrations (published as ``processed_all_anns.json``), one JSON document::

    {"<video uid>": {"clips": [{"narrations": [{"time": 12.5, "text": "#C C picks up a knife",
                                                "object_description": ["knife", "cutting board"]},
                                               ...]},
                               ...]},
     ...}

``time`` is seconds into the video. Each clip is one query, id ``<video uid>_clip<clip index, 6 digits>``
(the index in the video's ``clips`` list; a clip without narrations is skipped). An example item::

    {"id": "0a1b2c3d-..._clip000000",
     "sentences": "[12.5s] #C C picks up a knife (objects: knife, cutting board)\\n...",
     "image_ids": ["E4D_IMG_0a1b2c3d-..._00000012", "E4D_IMG_0a1b2c3d-..._00000013", ...],
     "image_prefix": "E4D_IMG_0a1b2c3d-..._"}

Frames are taken at 1 per second over the clip's narration span: one id per whole second from the
first narration's second to the last one's (frame number = whole seconds into the video, 8 digits).
Run it with ``python main.py --name E4D``.
"""

import math

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError


class E4D(AbstractDataset):
    scene = "E4D"

    def __init__(self, name="E4D", prompt_path="prompts/e4d.json",
                 query_inputs_path="datasets/samples/e4d/processed_all_anns.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        videos = load_json(path, "Ego4D narrations file")  # one JSON document
        if not isinstance(videos, dict):
            raise UserError(f"{path}: expected a JSON object {{video_uid: {{\"clips\": [...]}}}}")
        for uid, video in videos.items():
            clips = video.get("clips") if isinstance(video, dict) else None
            if not isinstance(clips, list):
                raise UserError(f"{path}: video {uid!r} has no 'clips' list")
            for index, clip in enumerate(clips):
                where = f"video {uid!r} clip {index}"
                narrations = clip.get("narrations") if isinstance(clip, dict) else None
                if not isinstance(narrations, list):
                    raise UserError(f"{path}: {where} has no 'narrations' list")
                if not narrations:
                    continue
                lines, times = [], []
                for n, nar in enumerate(narrations):
                    lines.append(self._line(nar, f"{path}: {where} narration {n}"))
                    times.append(nar["time"])
                first, last = math.floor(min(times)), math.floor(max(times))
                yield {"id": f"{uid}_clip{index:06d}", "sentences": "\n".join(lines),
                       "image_ids": [f"E4D_IMG_{uid}_{s:08d}" for s in range(max(first, 0), last + 1)],
                       "image_prefix": f"E4D_IMG_{uid}_"}

    @staticmethod
    def _line(nar, where):
        """``[12.5s] #C C picks up a knife (objects: knife, cutting board)``."""
        if not isinstance(nar, dict):
            raise UserError(f"{where} is a {type(nar).__name__}, not an object")
        time, text, objects = nar.get("time"), nar.get("text"), nar.get("object_description", [])
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            raise UserError(f"{where} has time {time!r}; expected seconds (a number)")
        if not isinstance(text, str):
            raise UserError(f"{where} has no 'text' string")
        if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
            raise UserError(f"{where} has object_description {objects!r}; expected a list of strings")
        objects = [o.strip() for o in objects if o.strip()]
        suffix = f" (objects: {', '.join(objects)})" if objects else ""
        seconds = f"{round(float(time), 2):.2f}".rstrip("0").rstrip(".")  # 12.50 -> 12.5, 7.00 -> 7
        return f"[{seconds}s] {' '.join(text.split())}{suffix}"
