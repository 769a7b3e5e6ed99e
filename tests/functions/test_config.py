"""Settings from the environment (config.py): defaults, parsing and refusals."""

from __future__ import annotations

import pytest

from diffio_progress.functions.config import Settings


def test_defaults_suit_production() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.allowed_origins == ("*",)
    assert settings.cors_max_age == 3600
    assert settings.firestore_timeout == 5.0
    assert settings.cloud_run_lookup is False
    assert settings.project is None


@pytest.mark.parametrize(
    ("raw", "origins"),
    [
        ("*", ("*",)),
        ("", ("*",)),
        (" , ", ("*",)),
        ("https://app.example", ("https://app.example",)),
        (
            "https://a.example, https://b.example ,",
            ("https://a.example", "https://b.example"),
        ),
    ],
)
def test_cors_allowed_origins_is_a_comma_separated_list(raw: str, origins: tuple[str, ...]) -> None:
    assert Settings.from_env({"CORS_ALLOWED_ORIGINS": raw}).allowed_origins == origins


@pytest.mark.parametrize(
    ("name", "raw", "attribute", "value"),
    [
        ("FIRESTORE_TIMEOUT_SECONDS", "1.5", "firestore_timeout", 1.5),
        ("FIRESTORE_TIMEOUT_SECONDS", " 2 ", "firestore_timeout", 2.0),
        ("FIRESTORE_TIMEOUT_SECONDS", "", "firestore_timeout", 5.0),
        ("CORS_MAX_AGE_SECONDS", "600", "cors_max_age", 600),
        ("MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
        ("GOOGLE_CLOUD_PROJECT", "my-project", "project", "my-project"),
        ("GOOGLE_CLOUD_PROJECT", "", "project", None),
        ("CLOUD_RUN_LOOKUP", "true", "cloud_run_lookup", True),
        ("CLOUD_RUN_LOOKUP", "TRUE", "cloud_run_lookup", True),
        ("CLOUD_RUN_LOOKUP", "1", "cloud_run_lookup", True),
        ("CLOUD_RUN_LOOKUP", "off", "cloud_run_lookup", False),
        ("CLOUD_RUN_LOOKUP", "", "cloud_run_lookup", False),
        ("CLOUD_RUN_EMULATOR_HOST", "127.0.0.1:9", "cloud_run_emulator_host", "127.0.0.1:9"),
        ("KEY_RATE_LIMIT_PER_SECOND", "0", "key_rate_limit_per_second", 0.0),
        ("KEY_RATE_LIMIT_BURST", "5", "key_rate_limit_burst", 5.0),
        ("WEBHOOK_SINK", "Svix", "webhook_sink", "svix"),
        ("WEBHOOK_SINK", "", "webhook_sink", "off"),
        ("SVIX_SERVER_URL", "http://127.0.0.1:9", "svix_server_url", "http://127.0.0.1:9"),
        ("WEBHOOK_MAX_AGE_HOURS", "1.5", "webhook_max_age_hours", 1.5),
        ("WEBHOOK_ALLOW_PRIVATE_URLS", "true", "webhook_allow_private_urls", True),
        ("REAPER_MIN_AGE_SECONDS", "0", "reaper_min_age_seconds", 0.0),
        ("REAPER_BATCH", "20", "reaper_batch", 20),
    ],
)
def test_reads_each_variable(name: str, raw: str, attribute: str, value: object) -> None:
    assert getattr(Settings.from_env({name: raw}), attribute) == value


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("FIRESTORE_TIMEOUT_SECONDS", "soon"),
        ("FIRESTORE_TIMEOUT_SECONDS", "-1"),
        ("FIRESTORE_TIMEOUT_SECONDS", "nan"),
        ("CORS_MAX_AGE_SECONDS", "an hour"),
        ("MAX_BODY_BYTES", "-5"),
        ("CLOUD_RUN_LOOKUP", "maybe"),
        ("KEY_RATE_LIMIT_PER_SECOND", "-1"),
        ("WEBHOOK_SINK", "kafka"),
        ("WEBHOOK_ALLOW_PRIVATE_URLS", "sometimes"),
        ("REAPER_BATCH", "0"),
        ("REAPER_BATCH", "2.5"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: raw})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.firestore_timeout = 1  # type: ignore[misc]


def test_the_svix_token_is_read_but_never_printed() -> None:
    token = "sk_test_do-not-print-me"
    settings = Settings.from_env({"SVIX_API_TOKEN": token})
    assert settings.svix_api_token == token
    assert token not in repr(settings) and token not in str(settings)
