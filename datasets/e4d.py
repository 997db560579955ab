"""E4D: first-person questions and answers for someone wearing AR glasses (Ego4D narrations).

Reads Ego4D narrations in either of two shapes, told apart video by video:

- Ego4D's ``narration.json`` (v1 and v2 annotations), an object by video uid::

      {"<video uid>": {"status": "complete",
                       "narration_pass_1": {"narrations": [{"timestamp_sec": 3.21, "timestamp_frame": 96,
                                                            "narration_text": "#C C opens the fridge",
                                                            "annotation_uid": "..."}, ...],
                                            "summaries": [{"summary_text": "#Summary C cooks", ...}]},
                       "narration_pass_2": {...}},
       ...}

  Every pass (``narration_pass_1``, ``_2``, ...) is merged into one list in time order (ties keep pass
  order), cut into windows of ``window_seconds`` (a class attribute, 16 by default: MIMIC-IT's E4D
  clips have 16 frames at one a second) counted from the start of the video. Each window with a
  narration is one query, id ``<video uid>_clip<window index, 6 digits>``: window k holds the
  narrations from ``k * window_seconds`` (inclusive) to ``(k + 1) * window_seconds`` seconds.
  Summaries are not used; a video without passes (``"status": "redacted"``) gives no query.
- the MIMIC-IT preprocessed ``processed_all_anns.json``::

      {"<video uid>": {"clips": [{"narrations": [{"time": 12.5, "text": "#C C picks up a knife",
                                                  "object_description": ["knife", "cutting board"]}]}]}}

  Each clip is one query, id ``<video uid>_clip<clip index, 6 digits>`` (its index in ``clips``),
  narrations in file order.

Narration markers become plain words (``plain``), and nothing else is rewritten: each marker ``#C``
(with the ``C`` it introduces), and a narration's leading ``C`` as its subject, is "the camera wearer"
(``#C C opens the door`` -> ``The camera wearer opens the door``); a ``C`` inside the text stays as
the annotator wrote it ("vitamin C", "a type C cable", "the A.C remote", ``#O man X hands C a cup``
-> ``Man X hands C a cup``). ``#O`` is dropped and the person it marks keeps the annotators' words
and letter, so one window can tell people apart (the prompt asks the model never to repeat the letters). Narrations marked ``#unsure`` are left out, and so are empty ones; a window or
clip with none left gives no query. An example item::

    {"id": "0a1b2c3d-..._clip000000",
     "sentences": "[12.5s] The camera wearer picks up a knife (objects: knife, cutting board)\\n...",
     "image_ids": ["E4D_IMG_0a1b2c3d-..._00000012", "E4D_IMG_0a1b2c3d-..._00000013", ...],
     "image_prefix": "E4D_IMG_0a1b2c3d-..._"}

Frames are taken at 1 per second over the query's narration span: one id per whole second from the
first narration's second to the last one's (frame number = whole seconds into the video, 8 digits).
``narration.json`` is about 1 GB: a file larger than ``stream_above_bytes`` (64 MB) is read one video
at a time (``syphus.release.jsonstream.iter_members``), a smaller one whole.
Run it with ``python main.py --name E4D`` (``-in`` a ``narration.json`` or a ``processed_all_anns.json``).
"""

import math
import os
import re

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError
from syphus.release.jsonstream import iter_members
from syphus.engine.scenes import frame_id, frame_prefix

WHAT = "Ego4D narrations file"
_PASS = re.compile(r"narration_pass_(\d+)")
_UNSURE = re.compile(r"#\s*unsure", re.I)
_CAMERA_TAG = re.compile(r"#[Cc]\b(?:\s+[Cc]\b)?")  # "#C C", "#c c", "#C"
_OTHER_TAG = re.compile(r"#[Oo]\b\s*")  # "#O " before another person
_SUBJECT = re.compile(r"C(?=\s|'s\b|$)")  # a narration's leading C ("C opens", "C's hand"), not "C-clamp", "C."


def plain(text):
    """A narration with Ego4D's markers as plain words, or None if it is ``#unsure`` or empty.

    >>> plain("#C C opens the door"), plain("#O man X gives C a cup"), plain("#C C holds #unsure")
    ('The camera wearer opens the door', 'Man X gives C a cup', None)
    >>> plain("#C C takes the vitamin C bottle"), plain("#C C picks the A.C remote"), plain("C plugs a type C cable")
    ('The camera wearer takes the vitamin C bottle', 'The camera wearer picks the A.C remote', 'The camera wearer plugs a type C cable')
    """
    if _UNSURE.search(text):
        return None
    text = _OTHER_TAG.sub("", _CAMERA_TAG.sub("the camera wearer", text)).replace("#", " ")
    text = " ".join(text.split())
    text = _SUBJECT.sub("the camera wearer", text, count=1) if _SUBJECT.match(text) else text
    return text[:1].upper() + text[1:] or None


def _seconds(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


class E4D(AbstractDataset):
    frame_seconds = 1.0  # frames at one a second, numbered by the second: --images labels each
    scene = "E4D"
    window_seconds = 16
    stream_above_bytes = 64 << 20

    def __init__(self, name="E4D", prompt_path="prompts/e4d.json",
                 query_inputs_path="datasets/samples/e4d/narration.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        if not (_seconds(self.window_seconds) and self.window_seconds > 0):
            raise UserError(f"{type(self).__name__}.window_seconds is {self.window_seconds!r}; "
                            "set it to a positive number of seconds")
        for uid, video in self._videos(path):
            if isinstance(video, dict) and "clips" in video:
                clips = self._clips(path, uid, video["clips"])
            elif isinstance(video, dict) and ("status" in video or any(map(_PASS.fullmatch, video))):
                clips = self._windows(path, uid, video)
            else:
                raise UserError(f"{path}: video {uid!r} has no 'clips' list (MIMIC-IT processed_all_anns.json) "
                                "nor 'narration_pass_1' (Ego4D narration.json); is this an Ego4D narrations file?")
            for index, events in clips:
                if events:
                    yield self._item(uid, index, events)

    def _videos(self, path):
        """``(video uid, video)`` pairs, streamed from a large file, from a small one loaded whole."""
        try:
            large = os.path.getsize(path) > self.stream_above_bytes
        except OSError:
            large = False  # load_json names the problem
        if large:
            yield from iter_members(path)
            return
        videos = load_json(path, WHAT)
        if not isinstance(videos, dict):
            raise UserError(f"{path}: expected a JSON object {{video_uid: {{\"narration_pass_1\": ...}}}} "
                            f"(or {{video_uid: {{\"clips\": [...]}}}}), found a {type(videos).__name__}")
        yield from videos.items()

    @staticmethod
    def _clips(path, uid, clips):
        """``(clip index, [(time, line), ...])`` per clip of the preprocessed shape."""
        if not isinstance(clips, list):
            raise UserError(f"{path}: video {uid!r} has no 'clips' list")
        for index, clip in enumerate(clips):
            where = f"{path}: video {uid!r} clip {index}"
            narrations = clip.get("narrations") if isinstance(clip, dict) else None
            if not isinstance(narrations, list):
                raise UserError(f"{where} has no 'narrations' list")
            events = []
            for n, nar in enumerate(narrations):
                time, text, objects = _fields(nar, f"{where} narration {n}", "time", "text")
                if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
                    raise UserError(f"{where} narration {n} has object_description {objects!r}; "
                                    "expected a list of strings")
                line = _line(time, text, objects)
                if line:
                    events.append((time, line))
            yield index, events

    def _windows(self, path, uid, video):
        """``(window index, [(time, line), ...])`` per window of ``narration.json``'s merged passes."""
        passes = sorted((k for k in video if _PASS.fullmatch(k)), key=lambda k: int(_PASS.fullmatch(k)[1]))
        timed = []
        for key in passes:
            narrations = video[key].get("narrations", []) if isinstance(video[key], dict) else None
            if not isinstance(narrations, list):
                raise UserError(f"{path}: video {uid!r} {key} has no 'narrations' list")
            for n, nar in enumerate(narrations):
                time, text, _ = _fields(nar, f"{path}: video {uid!r} {key} narration {n}",
                                        "timestamp_sec", "narration_text")
                timed.append((time, text))
        timed.sort(key=lambda t: t[0])  # stable: at equal times pass 1 comes first
        windows = {}
        for time, text in timed:
            line = _line(time, text, ())
            if line:
                windows.setdefault(max(math.floor(time / self.window_seconds), 0), []).append((time, line))
        return windows.items()

    @staticmethod
    def _item(uid, index, events):
        times = [t for t, _ in events]
        first, last = max(math.floor(min(times)), 0), math.floor(max(times))
        return {"id": f"{uid}_clip{index:06d}", "sentences": "\n".join(line for _, line in events),
                "image_ids": [frame_id("E4D", uid, s) for s in range(first, last + 1)],
                "image_prefix": frame_prefix("E4D", uid)}


def _fields(nar, where, time_key, text_key):
    """``(time, text, object_description)`` of one narration; raises a UserError naming it."""
    if not isinstance(nar, dict):
        raise UserError(f"{where} is a {type(nar).__name__}, not an object")
    time, text = nar.get(time_key), nar.get(text_key)
    if not _seconds(time):
        raise UserError(f"{where} has {time_key} {time!r}; expected seconds (a number)")
    if not isinstance(text, str):
        raise UserError(f"{where} has no '{text_key}' string")
    return time, text, nar.get("object_description", [])


def _line(time, text, objects):
    """``[12.5s] The camera wearer picks up a knife (objects: knife, cutting board)``, or None to leave out."""
    text = plain(text)
    if text is None:
        return None
    objects = [o.strip() for o in objects if o.strip()]
    suffix = f" (objects: {', '.join(objects)})" if objects else ""
    seconds = f"{round(float(time), 2):.2f}".rstrip("0").rstrip(".")  # 12.50 -> 12.5, 7.00 -> 7
    return f"[{seconds}s] {text}{suffix}"
