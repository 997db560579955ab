"""load_config: defaults < YAML file < CLI flags; errors name the file and the key; no secrets in files."""

from __future__ import annotations

import pytest

from syphus.config import RunConfig, load_config
from syphus.errors import UserError


def yaml_file(tmp_path, text, name="run.yaml"):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def test_defaults():
    cfg = load_config(None)
    assert isinstance(cfg, RunConfig)
    assert cfg.name is None
    assert cfg.num_threads == 8
    assert (cfg.slice_start, cfg.slice_end) == (0, -1)
    assert cfg.random_sample is False
    assert cfg.dataset_version == "v1"
    assert cfg.datasets_dir == "datasets" and cfg.output_dir == "output"
    assert cfg.prompt_path is None and cfg.query_inputs_path is None
    assert cfg.endpoint.kind == "auto" and cfg.endpoint.base_url is None and cfg.endpoint.model is None
    assert cfg.generation.temperature == 0.7 and cfg.generation.max_tokens == 1024
    assert cfg.generation.extra == {}
    assert cfg.limits.rpm is None and cfg.limits.tpm is None and cfg.limits.follow_headers is True
    assert cfg.retry.max_attempts >= 1


def test_empty_overrides_and_empty_file_give_defaults(tmp_path):
    f = yaml_file(tmp_path, "")
    assert load_config(f, {}) == load_config(None) == load_config(None, None)


def test_yaml_values(tmp_path):
    f = yaml_file(tmp_path, (
        "name: video.DenseCaptions\n"
        "num_threads: 64\n"
        "slice_end: 100\n"
        "endpoint:\n"
        "  base_url: http://127.0.0.1:8000/v1\n"
        "  model: qwen\n"
        "generation:\n"
        "  temperature: 0.2\n"
        "  extra:\n"
        "    stop: [\"\\n\\n\\n\"]\n"
        "    seed: 3\n"
        "limits:\n"
        "  rpm: 500\n"
        "  tpm: 90000\n"))
    cfg = load_config(f)
    assert cfg.name == "video.DenseCaptions"
    assert cfg.num_threads == 64 and cfg.slice_end == 100
    assert cfg.endpoint.base_url == "http://127.0.0.1:8000/v1" and cfg.endpoint.model == "qwen"
    assert cfg.generation.temperature == 0.2
    assert cfg.generation.extra == {"stop": ["\n\n\n"], "seed": 3}
    assert cfg.limits.rpm == 500.0 and cfg.limits.tpm == 90000.0
    # untouched siblings keep their defaults
    assert cfg.generation.max_tokens == 1024 and cfg.endpoint.kind == "auto"


def test_flags_override_yaml(tmp_path):
    f = yaml_file(tmp_path, "num_threads: 64\nlimits:\n  rpm: 500\n  tpm: 1000\nendpoint:\n  model: a\n")
    cfg = load_config(f, {"num_threads": 4, "limits.rpm": 60, "endpoint.model": "b"})
    assert cfg.num_threads == 4
    assert cfg.limits.rpm == 60.0
    assert cfg.limits.tpm == 1000.0  # the sibling from the file survives the nested override
    assert cfg.endpoint.model == "b"


def test_none_flags_do_not_override(tmp_path):
    f = yaml_file(tmp_path, "num_threads: 64\nlimits:\n  rpm: 500\n")
    cfg = load_config(f, {"num_threads": None, "limits.rpm": None, "name": "X"})
    assert cfg.num_threads == 64 and cfg.limits.rpm == 500.0 and cfg.name == "X"


def test_flags_alone():
    cfg = load_config(None, {"name": "Example.example", "limits.rpm": 500, "retry.max_attempts": 2})
    assert cfg.name == "Example.example" and cfg.limits.rpm == 500.0 and cfg.retry.max_attempts == 2


def test_unknown_top_level_key_names_file_and_key(tmp_path):
    f = yaml_file(tmp_path, "name: x\nnum_thread: 4\n")
    with pytest.raises(UserError) as e:
        load_config(f)
    msg = str(e.value)
    assert str(f) in msg and "num_thread" in msg and "unknown key" in msg
    assert "num_threads" in msg  # the known keys are listed


def test_unknown_nested_key_names_the_dotted_key(tmp_path):
    f = yaml_file(tmp_path, "limits:\n  rpm: 5\n  requests_per_minute: 5\n")
    with pytest.raises(UserError) as e:
        load_config(f)
    assert str(f) in str(e.value) and "limits.requests_per_minute" in str(e.value)


@pytest.mark.parametrize("text, key", [
    ("num_threads: lots\n", "num_threads"),
    ("num_threads: 0\n", "num_threads"),
    ("limits: 5\n", "limits"),
    ("limits:\n  rpm: -1\n", "limits.rpm"),
    ("generation:\n  temperature: 3\n", "generation.temperature"),
    ("endpoint:\n  kind: azur\n", "endpoint.kind"),
    ("random_sample: [1]\n", "random_sample"),
])
def test_bad_type_or_value_is_a_user_error(tmp_path, text, key):
    f = yaml_file(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_config(f)
    assert str(f) in str(e.value) and f"'{key}'" in str(e.value)


def test_bad_flag_value_is_blamed_on_the_flags():
    with pytest.raises(UserError) as e:
        load_config(None, {"num_threads": 0})
    assert "command-line flags" in str(e.value) and "num_threads" in str(e.value)


@pytest.mark.parametrize("text, where", [
    ("api_key: sk-abc\n", "api_key"),
    ("endpoint:\n  api_key: sk-abc\n", "endpoint.api_key"),
    ("endpoint:\n  API_KEY: sk-abc\n", "endpoint.API_KEY"),
    ("generation:\n  extra:\n    api_key: sk-abc\n", "generation.extra.api_key"),
    ("openai_api_key: sk-abc\n", "openai_api_key"),
])
def test_api_key_in_yaml_is_refused(tmp_path, text, where):
    f = yaml_file(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_config(f)
    msg = str(e.value)
    assert str(f) in msg and where in msg and "OPENAI_API_KEY" in msg
    assert "sk-abc" not in msg  # the secret itself is never echoed


def test_api_key_inside_a_list_is_refused(tmp_path):
    f = yaml_file(tmp_path, "generation:\n  extra:\n    headers:\n      - api_key: sk-abc\n")
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        load_config(f)


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = yaml_file(tmp_path, "name: x\nlimits:\n  rpm: 5\n   tpm: [\n")
    with pytest.raises(UserError) as e:
        load_config(f)
    msg = str(e.value)
    assert "not valid YAML" in msg
    line = int(msg.split(f"{f}:", 1)[1].split(":", 1)[0])
    assert line in (3, 4)


def test_tab_indentation_names_the_line(tmp_path):
    f = yaml_file(tmp_path, "name: x\n\tnum_threads: 2\n")
    with pytest.raises(UserError, match=rf"{f}:2: not valid YAML"):
        load_config(f)


def test_yaml_that_is_not_a_mapping(tmp_path):
    f = yaml_file(tmp_path, "- name\n- x\n")
    with pytest.raises(UserError, match="must be a mapping"):
        load_config(f)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError) as e:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(e.value) and "--config" in str(e.value)


def test_config_is_checked_on_assignment():
    cfg = load_config(None)
    with pytest.raises(Exception):
        cfg.num_threads = 0
