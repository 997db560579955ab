"""Endpoint resolution from config + environment; no secrets in how an endpoint is described (the error
mapping and body parsing are in test_client)."""

from __future__ import annotations

import pytest

from syphus.config import EndpointConfig
from syphus.engine.endpoint import OPENAI_URL, choose_kind, resolve_endpoint
from syphus.errors import UserError
from tests.conftest import KEY

C = EndpointConfig


# --- resolve_endpoint -------------------------------------------------------------------


def test_openai_key_only():
    ep = resolve_endpoint(C(), {"OPENAI_API_KEY": KEY})
    assert ep.kind == "openai"
    assert ep.url == OPENAI_URL + "/chat/completions" == "https://api.openai.com/v1/chat/completions"
    assert dict(ep.headers) == {"Authorization": f"Bearer {KEY}"}
    assert ep.model  # a default model is chosen
    assert KEY in ep.secrets


def test_openai_model_from_env_and_config():
    assert resolve_endpoint(C(), {"OPENAI_API_KEY": KEY, "OPENAI_MODEL": "gpt-4o"}).model == "gpt-4o"
    assert resolve_endpoint(C(), {"OPENAI_API_KEY": KEY, "OPENAI_API_ENGINE": "gpt-4"}).model == "gpt-4"
    assert resolve_endpoint(C(model="m"), {"OPENAI_API_KEY": KEY, "OPENAI_MODEL": "gpt-4o"}).model == "m"


def test_openai_org_header():
    ep = resolve_endpoint(C(), {"OPENAI_API_KEY": KEY, "OPENAI_ORG_ID": "org-1"})
    assert ep.headers["OpenAI-Organization"] == "org-1"


def test_base_url_is_compatible_and_key_optional():
    ep = resolve_endpoint(C(base_url="http://127.0.0.1:8000/v1/", model="qwen"), {})
    assert ep.kind == "compatible"
    assert ep.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert ep.model == "qwen"
    assert dict(ep.headers) == {}
    assert ep.secrets == ()


def test_base_url_with_key_sends_it():
    ep = resolve_endpoint(C(base_url="http://localhost:1234/v1"), {"OPENAI_API_KEY": KEY})
    assert ep.kind == "compatible"
    assert dict(ep.headers) == {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize("var", ["OPENAI_BASE_URL", "OPENAI_API_BASE"])
def test_base_url_from_env(var):
    ep = resolve_endpoint(C(), {var: "http://localhost:1234/v1"})
    assert ep.kind == "compatible" and ep.url == "http://localhost:1234/v1/chat/completions"


def test_base_url_pointing_at_openai_is_openai_and_needs_the_key():
    assert choose_kind(C(base_url="https://api.openai.com/v1"), {}) == "openai"
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        resolve_endpoint(C(base_url="https://api.openai.com/v1"), {})


def test_original_azure_env_vars():
    env = {"OPENAI_API_TYPE": "azure", "OPENAI_API_BASE": "https://my-res.openai.azure.com/",
           "OPENAI_API_VERSION": "2023-05-15", "OPENAI_API_ENGINE": "gpt35-deploy", "OPENAI_API_KEY": KEY}
    ep = resolve_endpoint(C(), env)
    assert ep.kind == "azure"
    assert ep.url == ("https://my-res.openai.azure.com/openai/deployments/gpt35-deploy/chat/completions"
                      "?api-version=2023-05-15")
    assert dict(ep.headers) == {"api-key": KEY}
    assert ep.model == "gpt35-deploy"
    assert KEY in ep.secrets


@pytest.mark.parametrize("api_type", ["azure", "Azure", "azure_ad"])
def test_azure_api_type_spellings(api_type):
    assert choose_kind(C(), {"OPENAI_API_TYPE": api_type}) == "azure"


def test_current_azure_env_vars():
    env = {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-mini"}
    ep = resolve_endpoint(C(), env)
    assert ep.kind == "azure"
    assert ep.url.startswith("https://res.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions"
                             "?api-version=")
    assert dict(ep.headers) == {"api-key": KEY}


def test_azure_endpoint_ending_in_openai_is_not_doubled():
    env = {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/openai/", "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "d", "OPENAI_API_VERSION": "2024-02-01"}
    ep = resolve_endpoint(C(), env)
    assert ep.url == "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-01"


def test_azure_config_wins_over_env():
    env = {"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "env-deploy", "OPENAI_API_VERSION": "2023-05-15"}
    ep = resolve_endpoint(C(model="cfg-deploy", api_version="2024-10-21"), env)
    assert "/deployments/cfg-deploy/" in ep.url and ep.url.endswith("api-version=2024-10-21")


def test_azure_deployment_is_url_quoted():
    env = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "my deploy/1"}
    assert "/deployments/my%20deploy%2F1/" in resolve_endpoint(C(), env).url


@pytest.mark.parametrize("env, missing", [
    ({"OPENAI_API_TYPE": "azure", "OPENAI_API_KEY": KEY, "OPENAI_API_ENGINE": "d"}, "AZURE_OPENAI_ENDPOINT"),
    ({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_DEPLOYMENT": "d"},
     "AZURE_OPENAI_API_KEY"),
    ({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": KEY},
     "AZURE_OPENAI_DEPLOYMENT"),
    ({"OPENAI_API_TYPE": "azure", "OPENAI_API_BASE": "https://r.openai.azure.com", "OPENAI_API_KEY": KEY},
     "OPENAI_API_ENGINE"),
])
def test_azure_missing_pieces_say_how_to_fix(env, missing):
    with pytest.raises(UserError) as e:
        resolve_endpoint(C(), env)
    assert missing in str(e.value)
    assert KEY not in str(e.value)


def test_openai_kind_without_key_says_how_to_fix():
    with pytest.raises(UserError) as e:
        resolve_endpoint(C(kind="openai"), {})
    assert "OPENAI_API_KEY" in str(e.value)


def test_nothing_configured_is_local():
    assert choose_kind(C(), {}) == "local"
    ep = resolve_endpoint(C(), {}, local_base_url="http://127.0.0.1:5555/v1")
    assert ep.kind == "local" and ep.url == "http://127.0.0.1:5555/v1/chat/completions"
    assert dict(ep.headers) == {}


def test_local_without_a_running_server():
    with pytest.raises(UserError, match="local"):
        resolve_endpoint(C(), {})


def test_explicit_kind_wins():
    assert choose_kind(C(kind="compatible"), {"OPENAI_API_KEY": KEY}) == "compatible"
    assert choose_kind(C(kind="local"), {"OPENAI_API_KEY": KEY}) == "local"


def test_base_url_in_config_beats_azure_endpoint_env():
    env = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}
    assert choose_kind(C(base_url="http://localhost:8000/v1"), env) == "compatible"


# --- no secrets in describe / repr -------------------------------------------------------------


def endpoints_with_secrets():
    return [
        resolve_endpoint(C(), {"OPENAI_API_KEY": KEY}),
        resolve_endpoint(C(base_url="http://localhost:8000/v1"), {"OPENAI_API_KEY": KEY}),
        resolve_endpoint(C(), {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com",
                               "AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_DEPLOYMENT": "d"}),
    ]


def test_describe_and_repr_never_contain_the_key():
    for ep in endpoints_with_secrets():
        assert KEY not in str(ep.describe())
        assert KEY not in repr(ep)
        assert KEY not in str(ep)
        assert set(ep.describe()) == {"kind", "url", "model"}


def test_describe_strips_user_and_password_from_urls():
    ep = resolve_endpoint(C(base_url="http://alice:hunter2@proxy.example:8443/v1"), {})
    d = ep.describe()
    assert d["url"] == "http://proxy.example:8443/v1/chat/completions"
    assert "hunter2" not in str(d) and "alice" not in str(d)
    assert "hunter2" in ep.secrets


def test_repr_strips_user_and_password_from_urls():
    ep = resolve_endpoint(C(base_url="http://alice:hunter2@proxy.example:8443/v1"), {})
    assert "hunter2" not in repr(ep)
    assert "alice" not in repr(ep)


def test_describe_keeps_ipv6_brackets():
    ep = resolve_endpoint(C(base_url="http://user:pw@[::1]:8000/v1"), {})
    assert ep.describe()["url"] == "http://[::1]:8000/v1/chat/completions"


def test_redact():
    ep = resolve_endpoint(C(base_url="http://h:1/v1"), {"OPENAI_API_KEY": KEY})
    text = f"sent {KEY} to http://u:pw-secret@h:1/v1 then {KEY} again"
    out = ep.redact(text)
    assert KEY not in out and "pw-secret" not in out
    assert out.count("***") == 3
    with_password = resolve_endpoint(C(base_url="http://u:pw-secret@h:1/v1"), {})  # a key beside it is refused
    assert "pw-secret" not in with_password.redact("to http://u:pw-secret@h:1/v1")
    assert ep.redact("nothing secret") == "nothing secret"


def test_redact_without_secrets_is_identity():
    ep = resolve_endpoint(C(base_url="http://h:1/v1"), {})
    assert ep.redact("abc ***") == "abc ***"
