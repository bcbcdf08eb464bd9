"""The ``debversion`` type without ``CREATE EXTENSION``, for a broken packaged script.

Debian 12's postgresql-15-debversion (1.1.2-1+b1) declares the ``>`` operator
with ``NEGATOR = >=`` where ``<=`` is meant. PostgreSQL 15.18 checks negator
pairs and rejects the script ("negator operator >= is already the negator of
operator <"), so the extension cannot be created on a current Debian 12. The
migration then defines the same type from the package's C library
(``$libdir/debversion``) with consistent operators. A database where the
extension already exists (every platform database) never takes this path.
"""

from __future__ import annotations

LIB = "$libdir/debversion"

# operator, C function, commutator, negator, restrict, join
_OPERATORS = [
    ("=", "debversion_eq", "=", "!=", "eqsel", "eqjoinsel"),
    ("!=", "debversion_ne", "!=", "=", "neqsel", "neqjoinsel"),
    ("<", "debversion_lt", ">", ">=", "scalarltsel", "scalarltjoinsel"),
    (">", "debversion_gt", "<", "<=", "scalargtsel", "scalargtjoinsel"),
    ("<=", "debversion_le", ">=", ">", "scalarltsel", "scalarltjoinsel"),
    (">=", "debversion_ge", "<=", "<", "scalargtsel", "scalargtjoinsel"),
]


def ddl() -> list[str]:
    statements = [
        "CREATE TYPE debversion",
        # Stored like text: the type differs from text only in its ordering.
        "CREATE FUNCTION debversionin(cstring) RETURNS debversion AS 'textin' LANGUAGE internal IMMUTABLE STRICT",
        "CREATE FUNCTION debversionout(debversion) RETURNS cstring AS 'textout' LANGUAGE internal IMMUTABLE STRICT",
        "CREATE FUNCTION debversionrecv(internal) RETURNS debversion AS 'textrecv' LANGUAGE internal STABLE STRICT",
        "CREATE FUNCTION debversionsend(debversion) RETURNS bytea AS 'textsend' LANGUAGE internal STABLE STRICT",
        "CREATE TYPE debversion (LIKE = text, INPUT = debversionin, OUTPUT = debversionout, "
        "RECEIVE = debversionrecv, SEND = debversionsend, CATEGORY = 'S', PREFERRED = false)",
        "CREATE CAST (debversion AS text) WITHOUT FUNCTION AS IMPLICIT",
        "CREATE CAST (debversion AS varchar) WITHOUT FUNCTION AS IMPLICIT",
        "CREATE CAST (text AS debversion) WITHOUT FUNCTION AS ASSIGNMENT",
        "CREATE CAST (varchar AS debversion) WITHOUT FUNCTION AS ASSIGNMENT",
        f"CREATE FUNCTION debversion_cmp(debversion, debversion) RETURNS integer AS '{LIB}' "
        "LANGUAGE C IMMUTABLE STRICT",
        f"CREATE FUNCTION debversion_hash(debversion) RETURNS int4 AS '{LIB}' LANGUAGE C IMMUTABLE STRICT",
    ]
    for _op, func, *_rest in _OPERATORS:
        statements.append(
            f"CREATE FUNCTION {func}(debversion, debversion) RETURNS boolean AS '{LIB}' LANGUAGE C IMMUTABLE STRICT"
        )
    for op, func, commutator, negator, restrict, join in _OPERATORS:
        statements.append(
            f"CREATE OPERATOR {op} (PROCEDURE = {func}, LEFTARG = debversion, RIGHTARG = debversion, "
            f"COMMUTATOR = {commutator}, NEGATOR = {negator}, RESTRICT = {restrict}, JOIN = {join})"
        )
    statements += [
        "CREATE OPERATOR CLASS debversion_ops DEFAULT FOR TYPE debversion USING btree AS "
        "OPERATOR 1 < (debversion, debversion), OPERATOR 2 <= (debversion, debversion), "
        "OPERATOR 3 = (debversion, debversion), OPERATOR 4 >= (debversion, debversion), "
        "OPERATOR 5 > (debversion, debversion), FUNCTION 1 debversion_cmp(debversion, debversion)",
        "CREATE OPERATOR CLASS debversion_ops DEFAULT FOR TYPE debversion USING hash AS "
        "OPERATOR 1 = (debversion, debversion), FUNCTION 1 debversion_hash(debversion)",
        f"CREATE FUNCTION debversion_smaller(debversion, debversion) RETURNS debversion AS '{LIB}' "
        "LANGUAGE C IMMUTABLE STRICT",
        f"CREATE FUNCTION debversion_larger(debversion, debversion) RETURNS debversion AS '{LIB}' "
        "LANGUAGE C IMMUTABLE STRICT",
        "CREATE AGGREGATE min(debversion) (SFUNC = debversion_smaller, STYPE = debversion, SORTOP = <)",
        "CREATE AGGREGATE max(debversion) (SFUNC = debversion_larger, STYPE = debversion, SORTOP = >)",
    ]
    return statements


DROP = "DROP TYPE debversion CASCADE"
