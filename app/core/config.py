"""Settings, read from the environment (`COUNTERSIGN_...`) and `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
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

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "production":
            for name in ("api_keys", "fingerprint_key"):
                value = getattr(self, name).get_secret_value()
                if not value or value == DEV_PLACEHOLDER or value.startswith("countersign-dev"):
                    raise ValueError(
                        f"COUNTERSIGN_{name.upper()} must be set to a real secret in production"
                    )
        return self

    def api_key_list(self) -> list[str]:
        """The configured API keys."""
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]
