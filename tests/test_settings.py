"""Settings: environment variables, defaults, errors that name the variable, hidden secrets."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from smsqueue.errors import ConfigError
from smsqueue.settings import Settings, load

TOKEN = "wx_live_secret_token_9f8e7d"
VOIP_KEY = "vk_live_key_1a2b3c"
VOIP_PASSWORD = "vp_live_password_4d5e6f"
REDIS_PASSWORD = "redis-hunter2-pw"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SMSQUEUE_* variable from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("SMSQUEUE_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_issue() -> None:
    """With nothing set: the vendors' documented URLs and Wooxy's 10 concurrent requests."""
    s = load()
    assert s.wooxy_url == "https://api.wooxy.com/v3"
    assert s.voip_url == "https://voip-communications.net/api-v2/index.php"
    assert s.wooxy_max_concurrency == 10
    assert s.wooxy_token is None
    assert s.wooxy_domain is None
    assert s.voip_key is None
    assert s.voip_password is None
    assert s.default_region is None
    assert s.log_level == "INFO"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SMSQUEUE_<FIELD> variable sets its field, with the right type."""
    env = {
        "SMSQUEUE_REDIS_URL": "redis://127.0.0.1:6390/2",
        "SMSQUEUE_WOOXY_URL": "http://127.0.0.1:8080/wooxy/v3/",
        "SMSQUEUE_WOOXY_TOKEN": TOKEN,
        "SMSQUEUE_WOOXY_DOMAIN": "senderDomain.com",
        "SMSQUEUE_WOOXY_MAX_CONCURRENCY": "4",
        "SMSQUEUE_WOOXY_RATE": "12.5",
        "SMSQUEUE_WOOXY_PRICE": "0.0450",
        "SMSQUEUE_VOIP_URL": "http://127.0.0.1:8080/voip/api-v2/index.php",
        "SMSQUEUE_VOIP_KEY": VOIP_KEY,
        "SMSQUEUE_VOIP_PASSWORD": VOIP_PASSWORD,
        "SMSQUEUE_VOIP_MAX_RECIPIENTS": "250",
        "SMSQUEUE_READ_TIMEOUT": "20",
        "SMSQUEUE_DEFAULT_REGION": "US",
        "SMSQUEUE_LOG_LEVEL": "debug",
        "SMSQUEUE_LOG_JSON": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load()
    assert s.redis_url == "redis://127.0.0.1:6390/2"
    assert s.wooxy_url == "http://127.0.0.1:8080/wooxy/v3"  # trailing slash dropped
    assert s.wooxy_token is not None
    assert s.wooxy_token.get_secret_value() == TOKEN
    assert s.wooxy_domain == "senderDomain.com"
    assert s.wooxy_max_concurrency == 4
    assert s.wooxy_rate == 12.5
    assert s.wooxy_price == Decimal("0.0450")
    assert s.voip_url == "http://127.0.0.1:8080/voip/api-v2/index.php"
    assert s.voip_max_recipients == 250
    assert s.read_timeout == 20.0
    assert s.default_region == "US"
    assert s.log_level == "DEBUG"
    assert s.log_json is True
    assert s.require_wooxy()[1] == "senderDomain.com"
    key, password = s.require_voip()
    assert (key.get_secret_value(), password.get_secret_value()) == (VOIP_KEY, VOIP_PASSWORD)


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """load(**overrides) takes precedence over a variable."""
    monkeypatch.setenv("SMSQUEUE_WOOXY_MAX_CONCURRENCY", "4")
    assert load(wooxy_max_concurrency=7).wooxy_max_concurrency == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMSQUEUE_WOOXY_MAX_CONCURRENCY", "abc"),
        ("SMSQUEUE_WOOXY_MAX_CONCURRENCY", "0"),
        ("SMSQUEUE_WOOXY_RATE", "0"),
        ("SMSQUEUE_WOOXY_PRICE", "-1"),
        ("SMSQUEUE_WOOXY_URL", "api.wooxy.com/v3"),
        ("SMSQUEUE_VOIP_URL", "ftp://voip-communications.net"),
        ("SMSQUEUE_VOIP_MAX_RECIPIENTS", "1001"),
        ("SMSQUEUE_VOIP_MAX_RECIPIENTS", "0"),
        ("SMSQUEUE_CONNECT_TIMEOUT", "-1"),
        ("SMSQUEUE_KEEPALIVE_EXPIRY", "soon"),
        ("SMSQUEUE_LOG_LEVEL", "LOUD"),
        ("SMSQUEUE_LOG_JSON", "maybe"),
        ("SMSQUEUE_DEFAULT_REGION", "ZZ"),
        ("SMSQUEUE_DEFAULT_REGION", "USA"),
    ],
)
def test_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """An invalid value raises ConfigError whose message starts with the variable's name."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load()
    assert str(info.value).startswith(name + ":")
    assert info.value.__cause__ is None
    assert isinstance(info.value, ValueError)


def test_config_error_does_not_echo_the_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret pasted into the wrong variable is not repeated by the error."""
    monkeypatch.setenv("SMSQUEUE_VOIP_MAX_RECIPIENTS", VOIP_PASSWORD)
    with pytest.raises(ConfigError) as info:
        load()
    assert VOIP_PASSWORD not in str(info.value)
    assert VOIP_PASSWORD not in repr(info.value)


@pytest.mark.parametrize(("value", "expected"), [("us", "US"), (" gb ", "GB"), ("", None)])
def test_default_region_is_normalised(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None
) -> None:
    """A region code is upper-cased (phonenumbers only reads upper case); empty means none."""
    monkeypatch.setenv("SMSQUEUE_DEFAULT_REGION", value)
    assert load().default_region == expected


def test_secrets_never_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token, key, password and the Redis URL's password are hidden when settings print."""
    monkeypatch.setenv("SMSQUEUE_WOOXY_TOKEN", TOKEN)
    monkeypatch.setenv("SMSQUEUE_VOIP_KEY", VOIP_KEY)
    monkeypatch.setenv("SMSQUEUE_VOIP_PASSWORD", VOIP_PASSWORD)
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", f"redis://default:{REDIS_PASSWORD}@cache:6379/0")
    s = load()
    for text in (repr(s), str(s), f"{s}", f"{s!r}"):
        for secret in (TOKEN, VOIP_KEY, VOIP_PASSWORD, REDIS_PASSWORD):
            assert secret not in text
    assert "cache:6379/0" in repr(s)
    # The value itself is untouched: only its printed form is hidden.
    assert s.redis_url == f"redis://default:{REDIS_PASSWORD}@cache:6379/0"


def test_redis_url_with_password_only_is_hidden() -> None:
    """The 'redis://:password@host' form hides the password too."""
    s = load(redis_url=f"redis://:{REDIS_PASSWORD}@localhost:6379/0")
    assert REDIS_PASSWORD not in repr(s)
    assert REDIS_PASSWORD not in str(s)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are read."""
    s = load()
    with pytest.raises(ValueError, match="frozen"):
        s.wooxy_domain = "other.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SMSQUEUE_WOOXY_TOKEN"),
        ({"SMSQUEUE_WOOXY_TOKEN": ""}, "SMSQUEUE_WOOXY_TOKEN"),
        ({"SMSQUEUE_WOOXY_DOMAIN": "senderDomain.com"}, "SMSQUEUE_WOOXY_TOKEN"),
        ({"SMSQUEUE_WOOXY_TOKEN": TOKEN}, "SMSQUEUE_WOOXY_DOMAIN"),
        ({"SMSQUEUE_WOOXY_TOKEN": TOKEN, "SMSQUEUE_WOOXY_DOMAIN": ""}, "SMSQUEUE_WOOXY_DOMAIN"),
    ],
)
def test_require_wooxy_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str
) -> None:
    """require_wooxy raises ConfigError naming the first missing variable, without secrets."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=missing) as info:
        load().require_wooxy()
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SMSQUEUE_VOIP_KEY"),
        ({"SMSQUEUE_VOIP_PASSWORD": VOIP_PASSWORD}, "SMSQUEUE_VOIP_KEY"),
        ({"SMSQUEUE_VOIP_KEY": VOIP_KEY}, "SMSQUEUE_VOIP_PASSWORD"),
        ({"SMSQUEUE_VOIP_KEY": VOIP_KEY, "SMSQUEUE_VOIP_PASSWORD": ""}, "SMSQUEUE_VOIP_PASSWORD"),
    ],
)
def test_require_voip_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str
) -> None:
    """require_voip raises ConfigError naming the first missing variable, without secrets."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=missing) as info:
        load().require_voip()
    assert VOIP_KEY not in str(info.value)
    assert VOIP_PASSWORD not in str(info.value)


def test_settings_class_reads_the_environment_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() itself reads SMSQUEUE_* variables, case-insensitively by name."""
    monkeypatch.setenv("smsqueue_wooxy_domain", "lower.example")
    assert Settings().wooxy_domain == "lower.example"
