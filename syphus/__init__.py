"""Syphus: visual annotations in, multimodal instruction-response pairs out.

Map of the modules (each owns one thing; the CLI is the only one that prints):

- ``cli``       argument parsing, messages and exit codes
- ``config``    the typed run config (YAML < flags; no secrets)
- ``dataset``   ``AbstractDataset``, the plugin contract
- ``plugins``   finds ``datasets/*.py`` by path and resolves ``--name``
- ``prompt``    system message + in-context examples -> chat messages
- ``endpoint``  OpenAI / Azure / compatible / local endpoint from config and env
- ``client``    one chat-completion request over aiohttp, errors mapped
- ``limits``    request and token budgets, fed by response headers
- ``retry``     the one retry policy (tenacity)
- ``parse``     reply text -> instruction-response pairs
- ``runner``    the asyncio worker pool
- ``record``    the JSON line a settled query leaves: built, parsed and strictly encoded
- ``store``     the run folder: JSONL outputs, resume, meta.json, one writer (flock)
- ``cost``      prices, the --max-cost budget (worst case when usage is not reported)
- ``progress``  the live status line
- ``job``       one run wired end to end; ``reparse``
- ``local``     the bundled llama.cpp server (optional extra ``local``)
- ``errors``    the error tree
- ``idset``     a compact set of ids (resume: what is already settled)
- ``seen``      exact duplicate checks over a stream in ~2 bytes an id
"""

__version__ = "0.1.0"
