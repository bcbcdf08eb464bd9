import pytest

from janitor_common.textproto import TextProtoError, parse


def test_fields_messages_and_repeats() -> None:
    msg = parse(
        """
        # comment
        database_location: "postgresql://janitor@db/janitor"
        campaign {
          name: "lintian-fixes"
          debian_build { build_distribution: "lintian-fixes" build_suffix: "jan+lint" }
        }
        campaign < name: 'unchanged' >
        value: 12; ratio: 0.5, flag: true
        list: [1, 2, 3]
        kind: SOME_ENUM
        joined: "a" 'b'
        """
    )
    assert msg["database_location"] == ["postgresql://janitor@db/janitor"]
    assert [c["name"] for c in msg["campaign"]] == [["lintian-fixes"], ["unchanged"]]  # type: ignore[index]
    assert msg["campaign"][0]["debian_build"][0]["build_suffix"] == ["jan+lint"]  # type: ignore[index]
    assert msg["value"] == [12] and msg["ratio"] == [0.5] and msg["flag"] == [True]
    assert msg["list"] == [1, 2, 3]
    assert msg["kind"] == ["SOME_ENUM"]
    assert msg["joined"] == ["ab"]


def test_string_escapes() -> None:
    assert parse(r'x: "a\"b\n\x41\101"')["x"] == ['a"b\nAA']


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('a: "unterminated\n', 1),
        ("a {\n b: 1\n", 3),
        ("a: 1\n}\n", 2),
        ("a 1", 1),
        ("a: @", 1),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(TextProtoError) as exc:
        parse(text)
    assert exc.value.line == line
