"""SD (spot the difference): Spot-the-Diff ``train.json``, one query per image pair.

The source is one JSON document, a list of image pairs with the differences people wrote down::

    [{"img_id": "1018", "sentences": ["the white van is gone", "a man now stands by the gate", ""]},
     {"img_id": "77", "sentences": ["", ""]},
     {"img_id": "1018", "sentences": ["a man now stands by the gate", "the gate is open"]}, ...]

The published file has warts, read as they are:

- the same ``img_id`` comes two or three times (different annotators of the same pair), not always
  one after the other: its records make one query, their sentences in file order; a sentence an
  earlier record of the pair already gave is dropped, but one record's own lines stay as written,
  repeats included (some annotators write each difference over two lines, "the man in black" /
  "is not there in the after photo", and the repeated second line says which photo lacks him);
- records whose sentences are all ``""``: skipped; an ``img_id`` with nothing else gives no query.

Queries come in the order of each ``img_id``'s first record, one difference a line; the pair's two
images are ``SD_IMG_<img_id zero-padded to 5 digits>_1`` (before) and ``_2`` (after)::

    {"id": "1018",
     "sentences": "the white van is gone\\na man now stands by the gate\\nthe gate is open",
     "image_ids": ["SD_IMG_01018_1", "SD_IMG_01018_2"]}

MIMIC-IT used this same file, so there is no other format to accept. Run it with ``python main.py --name SD``.
"""

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError
from syphus.engine.scenes import pair_image_id


class SD(AbstractDataset):
    scene = "SD"

    def __init__(self, name="SD", prompt_path="prompts/sd.json",
                 query_inputs_path="datasets/samples/sd/train.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # The source is a single JSON document (a list of a few MB) and the records of one pair are
        # spread over it, so it is json.load-ed whole and grouped; items are yielded one at a time.
        records = load_json(path, "Spot-the-Diff file")
        if not isinstance(records, list):
            raise UserError(f"{path}: expected a list of {{'img_id', 'sentences'}} records, "
                            f"found a {type(records).__name__}")
        pairs = {}  # img_id -> its sentences, in file order; none an earlier record of the pair gave
        for n, record in enumerate(records):
            img_id, sentences = self._record(f"{path}: record {n}", record)
            kept = pairs.setdefault(img_id, [])
            earlier = set(kept)
            kept.extend(s for s in sentences if s and s not in earlier)
        for img_id, sentences in pairs.items():
            if sentences:
                yield {"id": img_id, "sentences": "\n".join(sentences),
                       "image_ids": [pair_image_id(img_id, 1), pair_image_id(img_id, 2)]}

    def attach_images(self, query_input, messages, frames):
        """With --images: the two pictures after the sentences, labelled as the sentences speak of them."""
        last = messages[-1]
        parts = [{"type": "text", "text": last["content"]}]
        for frame in frames:
            label = "The first image:" if frame.image_id.endswith("_1") else "The second image:"
            parts += [{"type": "text", "text": label}, frame.part]
        return messages[:-1] + [{**last, "content": parts}]

    @staticmethod
    def _record(where, record):
        """``(img_id, [sentence, ...])`` of one record, sentences stripped; raises a UserError naming it."""
        if not isinstance(record, dict):
            raise UserError(f"{where} is a {type(record).__name__}, not an object")
        img_id = record.get("img_id")
        if isinstance(img_id, int) and not isinstance(img_id, bool) and img_id >= 0:
            img_id = str(img_id)
        if not isinstance(img_id, str) or not (img_id.isascii() and img_id.isdigit()):
            raise UserError(f"{where} has img_id {img_id!r}; expected a number such as \"1018\"")
        sentences = record.get("sentences")
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise UserError(f"{where} (img_id {img_id!r}) has sentences {sentences!r}; expected a list of strings")
        return img_id, [s.strip() for s in sentences]
