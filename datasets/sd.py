"""SD (spot the difference): Spot-the-Diff ``train.json``, one query per image pair.

The source is one JSON document, a list of image pairs with the differences people wrote down::

    [{"img_id": "1018", "sentences": ["the white van is gone", "a man now stands by the gate"]}, ...]

Each pair becomes one item, one difference a line; the pair's two images are
``SD_IMG_<img_id zero-padded to 5 digits>_1`` (before) and ``_2`` (after)::

    {"id": "1018",
     "sentences": "the white van is gone\\na man now stands by the gate",
     "image_ids": ["SD_IMG_01018_1", "SD_IMG_01018_2"]}

Run it with ``python main.py --name SD``.
"""

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError


class SD(AbstractDataset):
    scene = "SD"

    def __init__(self, name="SD", prompt_path="prompts/sd.json",
                 query_inputs_path="datasets/samples/sd/train.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # The source is a single JSON document (a list), so it is json.load-ed whole; items are
        # still yielded one at a time.
        pairs = load_json(path, "Spot-the-Diff file")
        if not isinstance(pairs, list):
            raise UserError(f"{path}: expected a list of {{'img_id', 'sentences'}} records, "
                            f"found a {type(pairs).__name__}")
        for n, pair in enumerate(pairs):
            yield self._item(f"{path}: record {n}", pair)

    @staticmethod
    def _item(where, pair):
        if not isinstance(pair, dict):
            raise UserError(f"{where} is a {type(pair).__name__}, not an object")
        img_id = pair.get("img_id")
        if isinstance(img_id, int) and not isinstance(img_id, bool) and img_id >= 0:
            img_id = str(img_id)
        if not isinstance(img_id, str) or not (img_id.isascii() and img_id.isdigit()):
            raise UserError(f"{where} has img_id {img_id!r}; expected a number such as \"1018\"")
        where = f"{where} (img_id {img_id!r})"
        sentences = pair.get("sentences")
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise UserError(f"{where} has sentences {sentences!r}; expected a list of strings")
        lines = [s.strip() for s in sentences if s.strip()]
        if not lines:
            raise UserError(f"{where} has no difference sentences")
        padded = img_id.zfill(5)
        return {"id": img_id, "sentences": "\n".join(lines),
                "image_ids": [f"SD_IMG_{padded}_1", f"SD_IMG_{padded}_2"]}
