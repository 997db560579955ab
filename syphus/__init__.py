"""Syphus: visual annotations in, multimodal instruction-response pairs out.

Map of the package (each module owns one thing; only ``cli`` prints or exits;
``tests/test_layout.py`` checks that this map names every module):

The plugin contract and shared pieces
- ``dataset``    ``AbstractDataset``, the plugin contract (one required method)
- ``items``      each query input checked as the plugin gives it (a dict, an id, sentences; ids unique)
- ``jsonfile``   the annotation-file readers for plugins (``load_json``, ``iter_jsonl``; also in ``dataset``)
- ``families``   the scene families: one module per MIMIC-IT image family (ids, sources, query images,
                 defects, archives) and their registry
- ``inputs``     every input checked before the first request; blank items counted and listed
- ``repeats``    repeated ids of a stream found exactly in flat memory (hash buckets on disk)
- ``onduplicate`` the run's read: blank items out, repeated ids suffixed, skipped or merged (--on_duplicate)
- ``plugins``    finds ``datasets/*.py`` by path and resolves ``--name``
- ``prompt``     system message + in-context examples -> chat messages
- ``parse``      reply text -> instruction-response pairs
- ``reply``      the reply models of JSON mode: the schema sent, the validation of what comes back
- ``schemaform`` how a request asks for a reply schema (openai, vllm, llamacpp), one class each, and their
                 registry (config and CLI read it)
- ``config``     the typed run config (YAML < flags; no secrets)
- ``textfile``   a file the user writes (config, prices, prompt) read as UTF-8, else one error naming it
- ``errors``     the error tree: what the caller should do
- ``registry``   the named members of one extension family (endpoint kinds, schema forms) and their lookups
- ``durable``    files that survive a crash: whole writes, fsync, directory sync, atomic replace
- ``redaction``  secrets out of logs, errors and messages (URL passwords, keys of 8+ characters);
                 never applied to stored data
- ``idset``      a compact set of ids (resume: what is already settled)
- ``seen``       exact duplicate checks over a stream in ~2 bytes an id
- ``signals``    what a pair's text says of its quality (requested pairs, forbidden words, repeats,
                 refusals, question types), for the cold start and the report
- ``frames``     which of a query's frames to send (``spread``), each as an OpenAI chat image part; ``resize``
- ``image``      an image's bytes: format from its magic, size from its header alone, a stored value decoded

``kinds/``: the endpoint kinds, one module each, and their registry (config, CLI and redaction read it)
- ``base``       ``EndpointKind`` (one required method, ``resolve``), the resolved ``Endpoint``, its checks
- ``openai``     api.openai.com or an OpenAI base URL, bearer key required
- ``azure``      Azure OpenAI deployments (``api-key`` header, api-version, deployment in the URL)
- ``compatible`` any OpenAI-style server at a base URL (vLLM, llama.cpp, a proxy), key optional
- ``local``      the bundled model the run starts on this machine (priced at zero, llama.cpp's schema form)

``engine/``: one query from plugin to record
- ``endpoint``   which kind ``auto`` means; one endpoint or a pool entry resolved through its kind
- ``client``     one chat completion over aiohttp; the one error mapping (also for the SDK and batch lines)
- ``limits``     request and token budgets, fed by response headers
- ``retry``      the one retry policy (tenacity)
- ``structure``  whether requests carry the reply schema, in which endpoint's form; the fallback to text
- ``runner``     the asyncio worker pool
- ``failwatch``  a run whose endpoint answers nothing stops with the fix (identical failures in a row)
- ``query``      what one query sends (its requests per endpoint and format, its repair) and has cost
- ``pool``       the endpoints a run sends to: routing by capacity, cool-down, removal, per-endpoint figures
- ``repair``     a broken reply asked again on the same conversation, saying what was wrong (--repairs)
- ``record``     the JSON line a settled query leaves: built, parsed, tallied, strictly encoded
- ``stats``      how a run ended (``RunStatus``) and this session's counters
- ``store``      the run folder: JSONL outputs, resume, meta.json
- ``folderlock`` one writer a run folder (an exclusive flock naming who holds it)
- ``cost``       prices, the --max-cost budget (worst case when usage is not reported)
- ``imagetokens`` what an image costs in tokens per model (``configs/image_tokens.yaml``); sizes from headers
- ``attachment`` --images: each query's images found by id, chosen, counted and placed in its messages
- ``scenes``     scene names and every image-id rule
- ``parquet``    the one Parquet reader and row-group writer
- ``imageindex`` single images by id from a release image file of many GB, in flat memory (an SQLite index)
- ``imagevalues`` an indexed image's bytes read where the index says (a JSON value at its offset, a Parquet cell)
- ``imagescan``  where each image of a JSON image file is (byte offset and length), no value decoded
- ``samples``    the record of which video frames convert took (``XX.frames.jsonl``: times, counts, repeats)
- ``local``      the bundled llama.cpp server (optional extra ``local``)
- ``job``        one run wired end to end: the inputs checked, the endpoints opened, the context built, the
                 online pool or the batch runner driven
- ``context``    ``RunContext``: one run's wiring (config, dataset, store, endpoints, prices, budget, images)
- ``workload``   the dataset loaded from its plugin, its run folder, its query inputs checked and streamed
- ``plan``       the endpoints a run sends to, from the config alone; one endpoint is a pool of one
- ``pricing``    each endpoint's row of the pricing table, and the run's budget built from them
- ``meta``       ``meta.json``: what ran, with what, and what the folder holds
- ``dryrun``     what a run would cost and take, from its prompts; nothing sent
- ``reparse``    a run's raw replies parsed again with the dataset's current parser
- ``batch``      --mode batch: request files planned, batches submitted, polled and settled; ``--status``
- ``batchapi``   the Files and Batches routes through the openai SDK (its retries off, errors mapped)
- ``batchstate`` a batch run's chunks, rebuilt from and recorded to the crash-safe ``batch/state.jsonl``
- ``collect``    a finished batch settled: answers parsed and charged, repairs and failures sent again

``release/``: the MIMIC-IT release format
- ``jsonstream`` streaming reads of large JSON objects; ``ObjectWriter``
- ``images``     release image files (JSON or Parquet), streamed
- ``diskjoin``   joins ids on disk buckets (flat memory)
- ``export``     a run folder -> XX_instructions.json, XX_train.json, Parquet
- ``ledger``     instruction ids given once per pair and kept (``instruction_ids.jsonl``, flock)
- ``validate``   a release checked against every known defect
- ``checksum``   archives against the published MD5 table
- ``convert``    images, COCO, pairs and videos -> release image files (a package: sources,
                 frames, encode, worker, pool, parts, writers, tally)
- ``view``       a static offline viewer (its page is ``viewer/index.html``, css and js)
- ``origins``    what each pair of a release was made from (its query's annotation, read back from its run)
- ``viewserver`` the viewer's loopback server (``--serve``), refusing other sites' Host names
- ``dedup``      exact and near-duplicate texts (MinHash, LSH, exact Jaccard) in compact memory
- ``diversity``  instructions at ROUGE-L 0.7+ to an earlier one (MinHash candidates, bit-parallel LCS),
                 and the spread of counts (entropy, effective number)
- ``annotation`` each query's annotation read again from the plugin that made a run (judge, viewer)
- ``verdicts``   the judge's verdicts read back: those that still apply, the report's figure, export's scores
- ``grounding``  what an answer asserts that its own annotation never said (objects, people, colours, counts,
                 times, which image), with no model; for the report and export --min_grounding
- ``groundingwords`` the word lists the grounding check reads (genre words, general words, cues, denials)
- ``rungrounding`` the grounding check over a run folder: per pair, and the report's figure
- ``filters``    export's filters: near duplicates, judge scores, grounding scores; what each left out
- ``report``     what a run or release holds, as figures, in one streaming pass (``syphus report``):
                 the registry of its sections
- ``reportsection`` a section of the report (one class: fed the pair stream, gives its figures); judge,
                 grounding
- ``reportinput`` what each input is (run folder or release file) and its pairs, streamed
- ``reportcount`` the report's flat-memory counters (histograms, top keys) and text measures
- ``reportform`` the form sections: outcomes and why, lengths, question types, signals, diversity
- ``reportdups`` the duplicates section: exact and near-duplicate instructions across inputs
- ``reportcost`` the money and translation sections: cost, coverage, the language checks' pass rates
- ``reportpage`` the report as one offline HTML page of plots (matplotlib SVG) and tables, section by section
- ``reportdraw`` what the page's plots are made of (figures, SVG, tables)
- ``reportplots`` the page's plots of form (outcomes, lengths, questions, duplicates, signals, diversity)
- ``reportquality`` the page's plots of money and checks (cost, translation, judge, grounding)

``workflows/``: built on the engine
- ``translate``  a release into other languages, one id per (instruction, language)
- ``translationkey`` a translation run's ids: one key per English pair (id and text digest), per language
- ``translationfiles`` a translation run's files: one instructions file per language, and the failures
- ``language``   whether a translated field is in the language asked for: its script, its language
                 identified (py3langid, offline), not a copy, a plausible length
- ``coldstart``  candidate in-context examples tried on a sample and ranked
- ``judge``      every pair scored against its annotation by a judge model (a rubric prompt), once per pair

``cli/``: the command line
- ``main``       subcommands, messages, exit codes of a run
- ``flags``      every flag in named groups, each subcommand with its own; "did you mean" for a typo
- ``exits``      the one table of exit codes, and the one guard from the error tree to them
- ``progress``   the live status line
- ``summary``    what is printed when a run ends and for a dry run
- ``convert``, ``view``, ``report``  their subcommands' arguments and output
"""

__version__ = "0.1.0"
