"""Settings, read once from the environment into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from diffio_progress.core.retry_schedule import DEFAULT_SCHEDULE, Schedule, parse_schedule

# Environment variable names (docs/configuration.md and docs/events.md list them all).
GOOGLE_CLOUD_PROJECT = "GOOGLE_CLOUD_PROJECT"
FIRESTORE_EMULATOR_HOST = "FIRESTORE_EMULATOR_HOST"
CORS_ALLOWED_ORIGINS = "CORS_ALLOWED_ORIGINS"
CORS_MAX_AGE_SECONDS = "CORS_MAX_AGE_SECONDS"
FIRESTORE_TIMEOUT_SECONDS = "FIRESTORE_TIMEOUT_SECONDS"
MAX_BODY_BYTES = "MAX_BODY_BYTES"
API_KEY_CACHE_TTL_SECONDS = "API_KEY_CACHE_TTL_SECONDS"
CLOUD_RUN_LOOKUP = "CLOUD_RUN_LOOKUP"
CLOUD_RUN_DEADLINE_SECONDS = "CLOUD_RUN_DEADLINE_SECONDS"
CLOUD_RUN_CACHE_TTL_SECONDS = "CLOUD_RUN_CACHE_TTL_SECONDS"
CLOUD_RUN_EMULATOR_HOST = "CLOUD_RUN_EMULATOR_HOST"
KEY_RATE_LIMIT_PER_SECOND = "KEY_RATE_LIMIT_PER_SECOND"
KEY_RATE_LIMIT_BURST = "KEY_RATE_LIMIT_BURST"
REFUSED_KEY_CACHE_SECONDS = "REFUSED_KEY_CACHE_SECONDS"
REFUSED_KEYS_PER_ADDRESS_PER_MINUTE = "REFUSED_KEYS_PER_ADDRESS_PER_MINUTE"
TRUSTED_PROXY_HOPS = "TRUSTED_PROXY_HOPS"
WEBHOOK_SINK = "WEBHOOK_SINK"
SVIX_API_TOKEN = "SVIX_API_TOKEN"
SVIX_SERVER_URL = "SVIX_SERVER_URL"
SVIX_TEST_API_TOKEN = "SVIX_TEST_API_TOKEN"
WEBHOOK_DATABASE = "WEBHOOK_DATABASE"
WEBHOOK_MAX_AGE_HOURS = "WEBHOOK_MAX_AGE_HOURS"
WEBHOOK_ALLOW_PRIVATE_URLS = "WEBHOOK_ALLOW_PRIVATE_URLS"
WEBHOOK_SYNC_DEADLINE_SECONDS = "WEBHOOK_SYNC_DEADLINE_SECONDS"
WEBHOOK_SYNC_PER_KEY = "WEBHOOK_SYNC_PER_KEY"
WEBHOOK_SECRETS_KMS_KEY = "WEBHOOK_SECRETS_KMS_KEY"
WEBHOOK_SECRETS_LOCAL_KEY = "WEBHOOK_SECRETS_LOCAL_KEY"
# Set by Cloud Run (and so Cloud Functions gen2) in every instance: where a local key is refused.
K_SERVICE = "K_SERVICE"
REAPER_MIN_AGE_SECONDS = "REAPER_MIN_AGE_SECONDS"
REAPER_BATCH = "REAPER_BATCH"
WEBHOOK_RETRY_SCHEDULE = "WEBHOOK_RETRY_SCHEDULE"
WEBHOOK_DISABLE_AFTER_HOURS = "WEBHOOK_DISABLE_AFTER_HOURS"
WEBHOOK_LOG_DAYS = "WEBHOOK_LOG_DAYS"
RELAY_BATCH = "RELAY_BATCH"

# Where status-change events go (events-contract.md §4).
WEBHOOK_SINKS = ("off", "svix", "direct")

# A revoked key stops working within the key cache's TTL: never allow more than this.
MAX_API_KEY_CACHE_TTL = 30.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything the function can be configured with; defaults suit production."""

    project: str | None = None
    allowed_origins: tuple[str, ...] = ("*",)
    cors_max_age: int = 3600
    firestore_timeout: float = 5.0
    max_body_bytes: int = 64 * 1024
    # Off by default: revoke-key takes effect at once. Up to 30 s saves the
    # key lookup in most polls' batch (one billed read in five or six).
    api_key_cache_ttl: float = 0.0
    cloud_run_lookup: bool = False
    cloud_run_deadline: float = 2.0
    cloud_run_cache_ttl: float = 5.0
    cloud_run_emulator_host: str | None = None
    # What one API key may cost one instance: a token bucket; a rate of 0 turns it off.
    key_rate_limit_per_second: float = 20.0
    key_rate_limit_burst: float = 40.0
    # Callers without a usable key: a refused key is answered from memory this long, and
    # one client address may cause this many refused-key lookups a minute (0: no limit).
    refused_key_cache_seconds: float = 10.0
    refused_keys_per_address_per_minute: float = 60.0
    # Which X-Forwarded-For entry, counted from the right, is the client's address:
    # 1 on a direct Cloud Functions URL (Google's front end appends it), 2 behind a load balancer.
    trusted_proxy_hops: int = 1
    # Status-change events (events-contract.md §3-4).
    webhook_sink: str = "off"
    svix_api_token: str | None = field(default=None, repr=False)  # a secret: never printed
    svix_server_url: str | None = None
    # The Svix environment of test-mode webhooks (webhooks-api.md §3); a secret too.
    svix_test_api_token: str | None = field(default=None, repr=False)
    # The Firestore database of webhook endpoints and their secrets (webhooks-api.md §5).
    webhook_database: str = "webhooks"
    # Under Eventarc's 24 hours, so that a given-up CloudEvent is seen before it is dropped.
    webhook_max_age_hours: float = 23.0
    webhook_allow_private_urls: bool = False
    # Work a webhooks call does while its caller waits (webhooks-api.md §6): one deadline for
    # each lookup or send, and this many such calls in flight per target key per instance.
    webhook_sync_deadline_seconds: float = 5.0
    webhook_sync_per_key: int = 2
    # The key that encrypts signing secrets at rest: a Cloud KMS key name in production, or
    # base64 of 32 bytes locally (refused where K_SERVICE is set). A secret: never printed.
    webhook_secrets_kms_key: str | None = None
    webhook_secrets_local_key: str | None = field(default=None, repr=False)
    on_cloud_run: bool = False
    # The reaper of dead workers (events-contract.md §5).
    reaper_min_age_seconds: float = 60.0
    reaper_batch: int = 500
    # Durable delivery (delivery-contract.md §1-3).
    retry_schedule: Schedule = parse_schedule(DEFAULT_SCHEDULE)
    webhook_disable_after_hours: float = 120.0
    webhook_log_days: float = 30.0
    relay_batch: int = 500

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``).

        Unset or empty variables take the defaults above. A value that does
        not parse raises ``ValueError`` naming the variable, so a bad
        deployment fails at its first request rather than misbehaving.
        """
        env = os.environ if environ is None else environ
        origins = tuple(
            o.strip() for o in env.get(CORS_ALLOWED_ORIGINS, "*").split(",") if o.strip()
        )
        settings = cls(
            project=env.get(GOOGLE_CLOUD_PROJECT) or None,
            allowed_origins=origins or ("*",),
            cors_max_age=int(_number(env, CORS_MAX_AGE_SECONDS, cls.cors_max_age)),
            firestore_timeout=_number(env, FIRESTORE_TIMEOUT_SECONDS, cls.firestore_timeout),
            max_body_bytes=int(_number(env, MAX_BODY_BYTES, cls.max_body_bytes)),
            api_key_cache_ttl=_number(
                env, API_KEY_CACHE_TTL_SECONDS, cls.api_key_cache_ttl, MAX_API_KEY_CACHE_TTL
            ),
            cloud_run_lookup=_flag(env, CLOUD_RUN_LOOKUP),
            cloud_run_deadline=_number(env, CLOUD_RUN_DEADLINE_SECONDS, cls.cloud_run_deadline),
            cloud_run_cache_ttl=_number(env, CLOUD_RUN_CACHE_TTL_SECONDS, cls.cloud_run_cache_ttl),
            cloud_run_emulator_host=env.get(CLOUD_RUN_EMULATOR_HOST) or None,
            key_rate_limit_per_second=_number(
                env, KEY_RATE_LIMIT_PER_SECOND, cls.key_rate_limit_per_second
            ),
            key_rate_limit_burst=_number(env, KEY_RATE_LIMIT_BURST, cls.key_rate_limit_burst),
            refused_key_cache_seconds=_number(
                env, REFUSED_KEY_CACHE_SECONDS, cls.refused_key_cache_seconds
            ),
            refused_keys_per_address_per_minute=_number(
                env, REFUSED_KEYS_PER_ADDRESS_PER_MINUTE, cls.refused_keys_per_address_per_minute
            ),
            trusted_proxy_hops=_whole(env, TRUSTED_PROXY_HOPS, cls.trusted_proxy_hops),
            webhook_sink=_choice(env, WEBHOOK_SINK, WEBHOOK_SINKS, cls.webhook_sink),
            svix_api_token=env.get(SVIX_API_TOKEN) or None,
            svix_server_url=env.get(SVIX_SERVER_URL) or None,
            svix_test_api_token=env.get(SVIX_TEST_API_TOKEN) or None,
            webhook_database=env.get(WEBHOOK_DATABASE, "").strip() or cls.webhook_database,
            webhook_max_age_hours=_number(env, WEBHOOK_MAX_AGE_HOURS, cls.webhook_max_age_hours),
            webhook_allow_private_urls=_flag(env, WEBHOOK_ALLOW_PRIVATE_URLS),
            webhook_sync_deadline_seconds=_number(
                env, WEBHOOK_SYNC_DEADLINE_SECONDS, cls.webhook_sync_deadline_seconds
            ),
            webhook_sync_per_key=_whole(env, WEBHOOK_SYNC_PER_KEY, cls.webhook_sync_per_key),
            webhook_secrets_kms_key=env.get(WEBHOOK_SECRETS_KMS_KEY, "").strip() or None,
            webhook_secrets_local_key=env.get(WEBHOOK_SECRETS_LOCAL_KEY, "").strip() or None,
            on_cloud_run=bool(env.get(K_SERVICE)),
            reaper_min_age_seconds=_number(env, REAPER_MIN_AGE_SECONDS, cls.reaper_min_age_seconds),
            reaper_batch=_whole(env, REAPER_BATCH, cls.reaper_batch),
            retry_schedule=_schedule(env, WEBHOOK_RETRY_SCHEDULE),
            webhook_disable_after_hours=_number(
                env, WEBHOOK_DISABLE_AFTER_HOURS, cls.webhook_disable_after_hours
            ),
            webhook_log_days=_number(env, WEBHOOK_LOG_DAYS, cls.webhook_log_days),
            relay_batch=_whole(env, RELAY_BATCH, cls.relay_batch),
        )
        if settings.webhook_sync_deadline_seconds <= 0:
            raise ValueError(f"{WEBHOOK_SYNC_DEADLINE_SECONDS} must be more than zero")
        if settings.key_rate_limit_per_second > 0 and settings.key_rate_limit_burst < 1:
            raise ValueError(f"{KEY_RATE_LIMIT_BURST} must be at least 1 while a rate is set")
        return settings


def _number(
    env: Mapping[str, str], name: str, default: float, maximum: float = float("inf")
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or value != value:
        raise ValueError(f"{name} must be zero or more, got {raw!r}")
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}, got {raw!r}")
    return value


def _schedule(env: Mapping[str, str], name: str) -> Schedule:
    raw = env.get(name, "").strip() or DEFAULT_SCHEDULE
    try:
        return parse_schedule(raw)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    value = _number(env, name, default)
    if value != int(value) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {env.get(name)!r}")
    return int(value)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw
