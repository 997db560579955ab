"""``compatible``: any OpenAI-style server at a base URL (vLLM, llama.cpp's server, a proxy); a key is optional."""

from __future__ import annotations

from syphus.kinds.openai import OpenAI


class Compatible(OpenAI):
    """OpenAI's request and reply shapes at a URL of your own; a pool entry's key comes only from key_env."""

    name = "compatible"
    pool_key_var = None
    needs_key = False


KIND = Compatible()
