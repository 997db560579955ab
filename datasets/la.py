"""LA: LLaVA-style instructions about single COCO images, in three tasks (one class each).

- ``LACONV``: a conversation about the image (questions a person would ask, and answers);
- ``LADD``: a request for a detailed description, answered with one;
- ``LACR``: questions that need reasoning beyond what is visible, answered step by step.

All three read the standard COCO annotation files: ``query_inputs_path`` is the folder holding
``captions_<split>.json`` and ``instances_<split>.json`` (``split`` is a class attribute,
``train2017`` by default), or the path of a ``captions_<split>.json`` with its instances file beside it.
Shapes are described in ``datasets/_coco.py``. Every image of the captions file that has captions is
one query; an example item::

    {"id": "139",
     "sentences": "A living room with a couch and a television.\\n...\\nchair: [413.33, 158.26, 47.81, 143.37]",
     "image_ids": ["LA_IMG_000000000139"]}

The captions come one a line, then one ``category: [x, y, w, h]`` line per box (pixels, 2 decimals).
Run one with ``python main.py --name LACONV`` (or ``LADD``, ``LACR``).
"""

import _coco
from syphus.dataset import AbstractDataset


class LACONV(AbstractDataset):
    scene = "LACONV"
    split = "train2017"

    def __init__(self, name="LACONV", prompt_path="prompts/laconv.json", query_inputs_path="datasets/samples/la"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        folder, split = _coco.locate(path, self.split, "query_inputs_path is the folder holding captions_<split>.json "
                                                       "and instances_<split>.json, or a captions file's path")
        for image in _coco.load(folder, split).values():
            if image.captions:
                yield {"id": str(image.id), "sentences": "\n".join(image.lines()),
                       "image_ids": [f"LA_IMG_{image.id:012d}"]}


class LADD(LACONV):
    scene = "LADD"

    def __init__(self, name="LADD", prompt_path="prompts/ladd.json", query_inputs_path="datasets/samples/la"):
        super().__init__(name, prompt_path, query_inputs_path)


class LACR(LACONV):
    scene = "LACR"

    def __init__(self, name="LACR", prompt_path="prompts/lacr.json", query_inputs_path="datasets/samples/la"):
        super().__init__(name, prompt_path, query_inputs_path)
