"""CGD: COCO general difference, questions about what differs between two similar COCO images.

Reads the standard COCO annotation files (``captions_<split>.json`` and ``instances_<split>.json``,
shapes in ``datasets/_coco.py``; ``split`` is a class attribute, ``train2017`` by default) plus a pair
list ``cgd_pairs.json`` in the same folder. ``query_inputs_path`` is that folder, or the path of the pair
list (the COCO files then sit beside it).

``cgd_pairs.json`` (our format): a JSON list of ``[image_id_a, image_id_b]`` COCO image ids, e.g.
``[[139, 285], [632, 724]]``. Each pair is one query, id ``<a>_<b>``; an example item::

    {"id": "139_285",
     "sentences": "image a:\\nA living room with a couch.\\n...\\ncouch: [1, 230.5, 300, 180]\\n"
                  "image b:\\nA bedroom with a bed.\\n...\\nbed: [12, 200, 500, 250]",
     "image_ids": ["CGD_IMG_000000000139", "CGD_IMG_000000000285"]}

Image ids are ``CGD_IMG_<file stem>``, the COCO file name without its extension.
Run it with ``python main.py --name CGD``.
"""

from pathlib import Path

import _coco
from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError

PAIRS = "cgd_pairs.json"


class CGD(AbstractDataset):
    scene = "CGD"
    split = "train2017"

    def __init__(self, name="CGD", prompt_path="prompts/cgd.json", query_inputs_path="datasets/samples/cgd"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        p = Path(path)
        pairs_path = p if p.is_file() else p / PAIRS
        if not pairs_path.exists():
            raise UserError(f"{pairs_path}: not found; CGD needs a pair list {PAIRS} (a JSON list of "
                            "[image_id_a, image_id_b]) beside the COCO captions and instances files")
        pairs = load_json(pairs_path, "CGD pair list")  # one small JSON document
        if not isinstance(pairs, list):
            raise UserError(f"{pairs_path}: expected a JSON list of [image_id_a, image_id_b] pairs")
        images = _coco.load(*_coco.locate(pairs_path.parent, self.split, f"the COCO captions and instances files "
                                                                   f"go beside {PAIRS}"))
        seen = set()
        for n, pair in enumerate(pairs):
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(i, int) and not isinstance(i, bool) for i in pair)):
                raise UserError(f"{pairs_path}: pair {n} is {pair!r}; expected [image_id_a, image_id_b] (integers)")
            missing = [i for i in pair if i not in images]
            if missing:
                raise UserError(f"{pairs_path}: pair {n} {pair!r} names image {missing[0]}, which is not in "
                                f"captions_{self.split}.json")
            qid = f"{pair[0]}_{pair[1]}"
            if qid in seen:
                raise UserError(f"{pairs_path}: pair {n} {pair!r} is listed twice")
            seen.add(qid)
            a, b = images[pair[0]], images[pair[1]]
            yield {"id": qid, "sentences": "\n".join(["image a:", *a.lines(), "image b:", *b.lines()]),
                   "image_ids": [f"CGD_IMG_{a.stem}", f"CGD_IMG_{b.stem}"]}
