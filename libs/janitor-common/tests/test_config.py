import os
import subprocess
import sys
from pathlib import Path

import pytest

from janitor_common.config import CommonSettings, ConfigError, load_settings

# A configuration in the platform's format, full of fields we do not use.
PLATFORM_CONF = """
database_location: "postgresql://janitor@file-db:5432/janitor"
redis_location: "redis://file-redis:6379/1"
artifact_location: "gs://janitor-artifacts/runs"
logs_location: "gs://janitor-logs/"
user_agent: "Debian Janitor (file)"
committer: "Debian Janitor <janitor@jelmer.uk>"
origin: "janitor.debian.net"
bugtracker {
  kind: debian
  url: "https://bugs.debian.org/"
  name: "lintian-brush"
}
distribution {
  name: "unstable"
  archive_mirror_uri: "http://deb.debian.org/debian"
  component: "main"
  chroot: "unstable-amd64-sbuild"
  lintian_profile: "debian"
  build_command: "sbuild -Asv"
  vendor: "debian"
}
campaign {
  name: "lintian-fixes"
  command: "lintian-brush"
  branch_name: "lintian-fixes"
  debian_build {
    archive_description: "Lintian fixes"
    build_suffix: "jan+lint"
    build_distribution: "lintian-fixes"
    base_distribution: "unstable"
  }
  bugtracker { kind: debian url: "https://bugs.debian.org/" name: "lintian-brush" }
}
campaign {
  name: "unchanged"
  command: "true"
  debian_build { build_distribution: "unchanged" build_suffix: "jan+unchanged" }
}
apt_repository { name: "x" base: "y" select { campaign: "lintian-fixes" } }
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("JANITOR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "janitor.conf"
    path.write_text(PLATFORM_CONF)
    return path


def test_real_platform_conf_loads(conf: Path) -> None:
    s = load_settings(CommonSettings, config=str(conf))
    assert s.database_url == "postgresql://janitor@file-db:5432/janitor"
    assert s.sqlalchemy_url == "postgresql+psycopg://janitor@file-db:5432/janitor"
    assert s.redis_url == "redis://file-redis:6379/1"
    assert s.artifact_location == "gs://janitor-artifacts/runs"
    assert s.user_agent == "Debian Janitor (file)"
    assert [(c.name, c.build_distribution) for c in s.campaigns] == [
        ("lintian-fixes", "lintian-fixes"),
        ("unchanged", "unchanged"),
    ]
    assert [d.name for d in s.distributions] == ["unstable"]


def test_precedence_default_file_env_cli(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANITOR_DATABASE_URL", "postgresql://env@h/db")
    # default
    s = load_settings(CommonSettings)
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.user_agent.startswith("janitor/")
    # file over default, through JANITOR_CONFIG
    monkeypatch.setenv("JANITOR_CONFIG", str(conf))
    s = load_settings(CommonSettings)
    assert s.redis_url == "redis://file-redis:6379/1"
    # environment over file
    assert s.database_url == "postgresql://env@h/db"
    monkeypatch.setenv("JANITOR_REDIS_URL", "redis://env-redis:6379/0")
    assert load_settings(CommonSettings).redis_url == "redis://env-redis:6379/0"
    # command line over environment
    assert load_settings(CommonSettings, redis_url="redis://cli:1/0").redis_url == "redis://cli:1/0"


def test_cli_config_flag_beats_env_config(conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.conf"
    other.write_text('database_location: "postgresql://other@h/db"')
    monkeypatch.setenv("JANITOR_CONFIG", str(other))
    assert load_settings(CommonSettings, config=str(conf)).database_url.startswith("postgresql://janitor@file-db")


def test_plain_directory_artifact_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JANITOR_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("JANITOR_ARTIFACT_LOCATION", "relative/artifacts")
    monkeypatch.chdir(tmp_path)
    assert load_settings(CommonSettings).artifact_location == str(tmp_path / "relative/artifacts")


def test_missing_required_setting() -> None:
    with pytest.raises(ConfigError, match=r"setting database_url is required: set JANITOR_DATABASE_URL"):
        load_settings(CommonSettings)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.conf: cannot read it: No such file"):
        load_settings(CommonSettings, config=str(tmp_path / "nope.conf"))


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text('database_location: "x"\ncampaign {\n  name: "a"\n')
    with pytest.raises(ConfigError, match=r"config file .*bad.conf: line 3 column 9: Expected \"}\""):
        load_settings(CommonSettings, config=str(bad))


def test_bad_value_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANITOR_DATABASE_URL", "mysql://u@h/db")
    with pytest.raises(ConfigError) as exc:
        load_settings(CommonSettings)
    assert str(exc.value) == (
        "setting database_url from environment variable JANITOR_DATABASE_URL: "
        "must be a postgresql://USER@HOST:PORT/DB URL"
    )


def test_bad_value_in_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text('database_location: "postgresql://u@h/db"\nredis_location: "http://nope"\n')
    with pytest.raises(ConfigError, match=r"setting redis_url from config file .*bad.conf \(redis_location\)"):
        load_settings(CommonSettings, config=str(bad))


def test_wrong_type_in_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("database_location: 42\n")
    with pytest.raises(ConfigError, match=r"config file .*bad.conf: line 1 column 20: Expected string but found: '42'"):
        load_settings(CommonSettings, config=str(bad))


def test_bad_value_in_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text('database_location: "mysql://u@h/db"\n')
    with pytest.raises(ConfigError, match=r"setting database_url from config file .*\(database_location\)"):
        load_settings(CommonSettings, config=str(bad))


def test_bad_artifact_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANITOR_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("JANITOR_ARTIFACT_LOCATION", "ftp://x/y")
    with pytest.raises(ConfigError, match="artifact_location"):
        load_settings(CommonSettings)


def test_bad_json_list_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANITOR_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("JANITOR_CAMPAIGNS", "not json")
    with pytest.raises(ConfigError, match="campaigns"):
        load_settings(CommonSettings)


def test_cli_reports_one_line_without_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JANITOR_")}
    env["JANITOR_DATABASE_URL"] = "sqlite:///x"
    bindir = Path(sys.executable).parent
    for argv in (
        [str(bindir / "janitor-db"), "list-workers"],
        [str(bindir / "janitor-differ")],
        [str(bindir / "janitor-bzr-store"), "--vcs-path", str(tmp_path)],
        [str(bindir / "janitor-auto-upload"), "serve"],
    ):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (argv, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert "JANITOR_DATABASE_URL" in lines[0] and "Traceback" not in proc.stderr
