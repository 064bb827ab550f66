"""Settings, read from the environment (`COUNTERSIGN_...`) and `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PLACEHOLDER = "change-me"


class Settings(BaseSettings):
    """Service configuration; secrets are SecretStr and placeholders are refused in production."""

    model_config = SettingsConfigDict(env_prefix="COUNTERSIGN_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    api_keys: SecretStr = SecretStr(DEV_PLACEHOLDER)
    """Comma-separated API keys for machine clients of /v1/classify."""
    fingerprint_key: SecretStr = SecretStr("countersign-dev-fingerprint-key")
    """Key of the keyed fingerprints of account numbers."""
    max_body_bytes: int = 10 * 1024 * 1024
    model_dir: Path | None = None
    directory_file: Path | None = None

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "COUNTERSIGN_DATABASE_URL")
    )
    """Postgres URL; without one, `serve` starts an embedded Postgres in `data_dir`."""
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    database: bool = True
    """Use a database at all (False: a classify-only API, as the CLI is)."""
    migrate_on_start: bool = True
    data_dir: Path = Path(".countersign/pgdata")
    db_pool_size: int = 10
    webhook_secrets: SecretStr = SecretStr("gateway=change-me-dev-webhook-secret")
    """Per-source HMAC secrets: `source=secret1|secret2,other=secret3` (several for rotation)."""
    webhook_tolerance_seconds: int = 300
    public_url: str = "http://127.0.0.1:8000"
    """Base URL of this service, used in verification links and ticket URLs."""
    store_bodies: bool = True
    body_retention_days: int = 30
    token_ttl_hours: int = 72
    notify_webhook_url: str | None = None
    notify_webhook_secret: SecretStr = SecretStr("")
    notify_slack_url: SecretStr = SecretStr("")
    notify_max_attempts: int = 12

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "production":
            for name in ("api_keys", "fingerprint_key"):
                value = getattr(self, name).get_secret_value()
                if not value or value == DEV_PLACEHOLDER or value.startswith("countersign-dev"):
                    raise ValueError(
                        f"COUNTERSIGN_{name.upper()} must be set to a real secret in production"
                    )
            for source, secrets in self.webhook_sources().items():
                for secret in secrets:
                    if len(secret) < 16 or b"change-me" in secret:
                        raise ValueError(
                            f"COUNTERSIGN_WEBHOOK_SECRETS: the secret of source {source!r} must "
                            "be a real secret of at least 16 characters in production"
                        )
        return self

    def webhook_sources(self) -> dict[str, list[bytes]]:
        """Secrets per webhook source (several per source during a rotation)."""
        out: dict[str, list[bytes]] = {}
        for part in self.webhook_secrets.get_secret_value().split(","):
            if "=" not in part:
                continue
            source, _, secrets = part.partition("=")
            keys = [s.strip().encode() for s in secrets.split("|") if s.strip()]
            if source.strip() and keys:
                out.setdefault(source.strip(), []).extend(keys)
        return out

    def notifier_names(self) -> list[str]:
        """The notifiers configured for second-channel notices."""
        names = []
        if self.notify_webhook_url:
            names.append("webhook")
        if self.notify_slack_url.get_secret_value():
            names.append("slack")
        return names

    def api_key_list(self) -> list[str]:
        """The configured API keys."""
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]
