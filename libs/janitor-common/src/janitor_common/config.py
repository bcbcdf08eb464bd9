"""Settings shared by every Janitor process.

One typed object per process, filled from (lowest to highest) defaults, the
platform's ``janitor.conf`` (protobuf text format), ``JANITOR_*`` environment
variables, then command-line flags. Operators reuse the configuration they
already have, so the file reader takes only the fields we use and ignores the
rest; a missing or bad value stops start-up with one line naming the setting
and where its value came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from . import __version__, janitor_conf

ENV_PREFIX = "JANITOR_"


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line for the operator."""


class CampaignConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    build_distribution: str | None = None


class DistributionConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str


def _file_to_settings(message: Any) -> dict[str, Any]:
    """Map the platform's field names to ours, keeping only what we use."""

    out: dict[str, Any] = {}
    for ours, theirs in (
        ("database_url", "database_location"),
        ("redis_url", "redis_location"),
        ("artifact_location", "artifact_location"),
        ("user_agent", "user_agent"),
    ):
        if message.HasField(theirs):
            out[ours] = getattr(message, theirs)
    campaigns = []
    for c in message.campaign:
        entry: dict[str, Any] = {"name": c.name if c.HasField("name") else None}
        if c.HasField("debian_build") and c.debian_build.build_distribution:
            entry["build_distribution"] = c.debian_build.build_distribution
        campaigns.append(entry)
    if campaigns:
        out["campaigns"] = campaigns
    distributions = [{"name": d.name if d.HasField("name") else None} for d in message.distribution]
    if distributions:
        out["distributions"] = distributions
    return out


# Our setting name -> the janitor.conf field it is read from, for error messages.
_FILE_FIELD = {
    "database_url": "database_location",
    "redis_url": "redis_location",
    "artifact_location": "artifact_location",
    "user_agent": "user_agent",
    "campaigns": "campaign",
    "distributions": "distribution",
}


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read it: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    try:
        return _file_to_settings(janitor_conf.parse(text))
    except janitor_conf.ConfSyntaxError as e:
        raise ConfigError(f"config file {path}: {e}") from None


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads ``janitor.conf``; its path comes from ``--config`` or ``JANITOR_CONFIG``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path
        self.values = read_config_file(path) if path is not None else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class CommonSettings(BaseSettings):
    """Settings every service reads. Services subclass this with their own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    config: Path | None = None
    database_url: str
    redis_url: str = "redis://127.0.0.1:6379/0"
    artifact_location: str | None = None
    user_agent: str = f"janitor/{__version__}"
    campaigns: list[CampaignConfig] = []
    distributions: list[DistributionConfig] = []
    listen_address: str = "127.0.0.1"
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = init_settings().get("config") or os.environ.get(ENV_PREFIX + "CONFIG") or None
        return (init_settings, env_settings, _ConfigFileSource(settings_cls, Path(path) if path else None))

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: str) -> str:
        scheme = urlsplit(v).scheme
        if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError("must be a postgresql://USER@HOST:PORT/DB URL")
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str) -> str:
        if urlsplit(v).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://HOST:PORT/DB URL")
        return v

    @field_validator("artifact_location")
    @classmethod
    def _check_artifact_location(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        scheme = urlsplit(v).scheme
        if scheme in ("s3", "gs"):
            if not urlsplit(v).netloc:
                raise ValueError(f"{scheme}:// location needs a bucket name")
            return v
        if scheme == "file":
            v = urlsplit(v).path
        elif scheme:
            raise ValueError("must be a directory, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
        return str(Path(v).absolute())

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, v: str) -> str:
        v = v.upper()
        if v not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return v

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver we use (operators write plain libpq URLs)."""
        parts = urlsplit(self.database_url)
        return parts._replace(scheme="postgresql+psycopg").geturl()

    @property
    def libpq_url(self) -> str:
        parts = urlsplit(self.database_url)
        return parts._replace(scheme="postgresql").geturl()

    def required_artifact_location(self, prog: str) -> str:
        """The artifact location, for services that cannot work without one (ValueError otherwise)."""
        if self.artifact_location is None:
            raise ValueError(f"{prog} needs artifact_location (JANITOR_ARTIFACT_LOCATION)")
        return self.artifact_location

    def campaign_names(self) -> set[str]:
        return {c.name for c in self.campaigns}


S = TypeVar("S", bound=CommonSettings)


def _where(cls: type[BaseSettings], field: str, init: dict[str, Any], config_path: Path | None) -> str:
    if field in init:
        return f"--{field.replace('_', '-')}"
    env_name = ENV_PREFIX + field.upper()
    if any(k.upper() == env_name for k in os.environ):
        return f"environment variable {env_name}"
    if config_path is not None and field in _FILE_FIELD:
        return f"config file {config_path} ({_FILE_FIELD[field]})"
    return "default"


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings, turning any problem into a one-line ``ConfigError``.

    ``overrides`` are the command-line values; ``None`` means "not given".
    """
    init = {k: v for k, v in overrides.items() if v is not None}
    path_value = init.get("config") or os.environ.get(ENV_PREFIX + "CONFIG") or None
    config_path = Path(path_value) if path_value else None
    try:
        return cls(**init)
    except SettingsError as e:
        # Raised for environment values of list fields that are not JSON.
        raise ConfigError(f"environment: {e}") from None
    except ValidationError as e:
        err = e.errors()[0]
        loc = [str(p) for p in err["loc"]]
        field = loc[0] if loc else "?"
        where = _where(cls, field, init, config_path)
        name = ENV_PREFIX + field.upper() if where == "default" else field
        detail = ".".join(loc[1:])
        if err["type"] == "missing":
            msg = f"setting {field} is required: set {name}"
            if field in _FILE_FIELD:
                msg += f" or '{_FILE_FIELD[field]}' in the config file"
            raise ConfigError(msg) from None
        text = err["msg"].removeprefix("Value error, ")
        suffix = f" [{detail}]" if detail else ""
        raise ConfigError(f"setting {field}{suffix} from {where}: {text}") from None
