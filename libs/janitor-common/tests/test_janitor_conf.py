import subprocess
from pathlib import Path

import pytest

import janitor_common
from janitor_common.janitor_conf import ConfSyntaxError, parse

PACKAGE = Path(janitor_common.__file__).parent

# A configuration as the platform keeps it: most of it is for other services.
PLATFORM_CONF = """
# comment
logs_location: "gs://janitor-logs"
database_location: "postgresql://janitor@db/janitor"
committer: "Janitor <janitor@example.org>"
origin: "janitor.example.org"
oauth2_provider { client_id: "x" base_url: "https://salsa.example.org/" }
distribution {
  name: "unstable"
  archive_mirror_uri: "http://deb.example.org/debian"
  component: "main"
  component: "contrib"
  lintian_suppress_tag: ["a", "b"]
}
campaign {
  name: "lintian-fixes"
  branch_name: "lintian-fixes"
  force_build: true
  merge_proposal { value_threshold: 3 label: "lintian" }
  debian_build { build_distribution: "lintian-fixes" build_suffix: "jan+lint" extra_build_distribution: "unstable" }
  bugtracker { kind: debian url: "https://bugs.example.org/" }
}
campaign < name: 'unchanged' generic_build { chroot: "x" } >
bugtracker { kind: gitlab name: "salsa" }
redis_location: "redis://redis:6379"
user_agent: 'janitor/1'
"""


def test_reads_our_fields_and_skips_the_platforms_others() -> None:
    conf = parse(PLATFORM_CONF)
    assert conf.database_location == "postgresql://janitor@db/janitor"
    assert conf.redis_location == "redis://redis:6379"
    assert conf.user_agent == "janitor/1"
    assert not conf.HasField("artifact_location")
    assert [c.name for c in conf.campaign] == ["lintian-fixes", "unchanged"]
    assert conf.campaign[0].debian_build.build_distribution == "lintian-fixes"
    assert not conf.campaign[1].HasField("debian_build")
    assert [d.name for d in conf.distribution] == ["unstable"]


def test_last_value_wins() -> None:
    assert parse('user_agent: "a"\nuser_agent: "b"').user_agent == "b"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('database_location: "x"\ncampaign {\n  name: "a"\n', 3, 9),  # unclosed message (at the end)
        ("user_agent: t", 1, 13),  # not a string (the old reader took t/f as booleans)
        ('campaign: "x"', 1, 11),  # a message given a scalar
        ("campaign { name: 3x }", 1, 18),
        ('redis_location: "unterminated\n', 1, 17),
    ],
)
def test_errors_name_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(ConfSyntaxError) as exc:
        parse(text)
    assert str(exc.value).startswith(f"line {line} column {column}: "), str(exc.value)


def test_descriptor_is_built_from_the_proto(tmp_path: Path) -> None:
    """janitor_conf.desc is what protoc makes of janitor_conf.proto (rebuild with `make proto`)."""
    out = tmp_path / "janitor_conf.desc"
    subprocess.run(
        ["protoc", f"--proto_path={PACKAGE}", f"--descriptor_set_out={out}", "janitor_conf.proto"], check=True
    )
    assert out.read_bytes() == (PACKAGE / "janitor_conf.desc").read_bytes(), "run `make proto`"
