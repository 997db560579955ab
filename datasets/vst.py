"""VST (visual storytelling): VIST ``train.story-in-sequence.json``, one query per album.

The source is one JSON document::

    {"images": [{"id": "3341003", "title": "...", "tags": "...", "album_id": "72157600000001", ...}],
     "albums": [{"id": "72157600000001", "title": "Lake day", "description": "...", ...}],
     "annotations": [[{"story_id": "40001", "album_id": "72157600000001", "photo_flickr_id": "3341003",
                       "worker_arranged_photo_order": 0, "text": "we drove to the [location] .", ...}], ...]}

Each story is five annotations (one sentence per photo); an album has several stories. The album's
title and description come first, then each story on one line, its sentences in photo order::

    {"id": "72157600000001",
     "sentences": "Album: Lake day\\nDescription: ...\\nStory 1: we drove to the [location] . ...\\nStory 2: ...",
     "image_ids": ["VST_IMG_3341003", ...]}

``image_ids`` are the album's photos in story order (story 1's photos, then any new ones of story 2,
...), each once. Albums are yielded in the order of ``albums``; those without a story are skipped.
Run it with ``python main.py --name VST``.
"""

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError

_STORYLET_KEYS = ("album_id", "story_id", "photo_flickr_id", "worker_arranged_photo_order", "text")


class VST(AbstractDataset):
    scene = "VST"

    def __init__(self, name="VST", prompt_path="prompts/vst.json",
                 query_inputs_path="datasets/samples/vst/train.story-in-sequence.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # The source is a single JSON document (stories of an album are spread over it), so it is
        # json.load-ed whole and the stories grouped by album; items are yielded one at a time.
        data = load_json(path, "VIST file")
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) \
                or not isinstance(data.get("albums"), list):
            raise UserError(f"{path}: expected an object with 'albums' and 'annotations' lists "
                            "(VIST story-in-sequence format)")
        albums = {}
        for n, album in enumerate(data["albums"]):
            if not isinstance(album, dict) or "id" not in album:
                raise UserError(f"{path}: albums[{n}] has no 'id'")
            albums[str(album["id"])] = album
        stories = {}  # album id -> story id -> storylets
        for n, annotation in enumerate(data["annotations"]):
            if not isinstance(annotation, list):
                raise UserError(f"{path}: annotations[{n}] is a {type(annotation).__name__}, not a list")
            for storylet in annotation:
                missing = [k for k in _STORYLET_KEYS if not isinstance(storylet, dict) or k not in storylet]
                if missing:
                    raise UserError(f"{path}: annotations[{n}] has no {', '.join(map(repr, missing))}")
                if not isinstance(storylet["text"], str):
                    raise UserError(f"{path}: annotations[{n}] (story {storylet['story_id']!r}) has a "
                                    f"{type(storylet['text']).__name__} 'text', not a string")
                order = storylet["worker_arranged_photo_order"]
                if not isinstance(order, int) or isinstance(order, bool):
                    raise UserError(f"{path}: annotations[{n}] (story {storylet['story_id']!r}) has "
                                    f"worker_arranged_photo_order {order!r}; expected an integer")
                album_id = str(storylet["album_id"])
                if album_id not in albums:
                    raise UserError(f"{path}: annotations[{n}] (story {storylet['story_id']!r}) names album "
                                    f"{album_id!r}, which is not in 'albums'")
                stories.setdefault(album_id, {}).setdefault(str(storylet["story_id"]), []).append(storylet)
        for album_id, album in albums.items():
            if album_id in stories:
                yield self._item(album_id, album, stories[album_id])

    @staticmethod
    def _item(album_id, album, stories):
        lines = []
        for key, label in (("title", "Album"), ("description", "Description")):
            value = album.get(key)
            if isinstance(value, str) and value.strip():
                lines.append(f"{label}: {' '.join(value.split())}")
        image_ids = []
        for n, storylets in enumerate(stories.values(), 1):
            storylets = sorted(storylets, key=lambda s: s["worker_arranged_photo_order"])
            lines.append(f"Story {n}: " + " ".join(s["text"].strip() for s in storylets))
            for s in storylets:
                image_id = f"VST_IMG_{s['photo_flickr_id']}"
                if image_id not in image_ids:
                    image_ids.append(image_id)
        return {"id": album_id, "sentences": "\n".join(lines), "image_ids": image_ids}
