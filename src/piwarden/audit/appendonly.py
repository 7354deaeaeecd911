"""Database triggers that keep the audit log append-only (SQLite and PostgreSQL).

What they refuse, whoever sends the statement (the ORM, raw SQL, a shell on the database):

* ``audit_auditevent``: every DELETE but that of a sealed event at or below the greatest
  ``cut_seq`` of ``audit_auditcut`` (the retention sweep deleting what a signed cut left behind:
  ``piwarden.audit.cut``); every UPDATE but the sealer's, which sets ``seq``,
  ``prev_hash`` and ``hash`` of a row that has none of them and changes no other column (so an
  event is sealed once, and its content never changes); on SQLite also an INSERT that arrives
  sealed or reuses an id (``INSERT OR REPLACE`` deletes the row it replaces without firing the
  DELETE trigger), and a sealing UPDATE onto a seq or hash another event holds (``UPDATE OR
  REPLACE`` would delete that one).  On PostgreSQL, TRUNCATE.
* ``audit_auditcheckpoint`` and ``audit_auditcut``: every UPDATE and DELETE (the sealer and the
  cut only insert), an INSERT OR REPLACE on SQLite, TRUNCATE on PostgreSQL.
* ``audit_auditchainhead``: DELETE, and an UPDATE that moves the head back or changes its hash
  without moving it on (the sealer only moves it forward; its lock rewrites it unchanged).

What they cannot refuse: someone with DDL rights (the table's owner on PostgreSQL, anyone who
can write the SQLite file) drops them first.  ``piwarden audit verify`` then still names the
first broken event (the chain, the signed checkpoints and their export file do not rely on
them), and says that the triggers are missing or altered (:func:`missing`).

The statements here are the migrations' (``0009_append_only_triggers`` ran them without the
cut: :data:`INSTALL_BEFORE_CUTS`; ``0014_append_only_cut`` runs :data:`INSTALL`) and ``flush``'s: the
site's backends (``piwarden.sqlite``, ``piwarden.postgresql``) drop the triggers around the
DELETE or TRUNCATE of ``flush`` and put them back after it, in its transaction.  Emptying
every table is a DDL-level act, and the flushed log is then seen against the checkpoints'
export file.  A change of these statements needs a migration that runs :data:`INSTALL` again.

No model is imported here (the backends import this module before the apps are ready): the
table and column names are written out, and a test holds them to the models'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EVENTS = "audit_auditevent"
CHECKPOINTS = "audit_auditcheckpoint"
HEAD = "audit_auditchainhead"
CUTS = "audit_auditcut"
TABLES = (EVENTS, CHECKPOINTS, HEAD, CUTS)

# The columns an UPDATE by the sealer leaves as they are (all but seq, prev_hash and hash).
UNSEALED_KEEPS = (
    "id",
    "digest",
    "occurred_at",
    "event_type",
    "actor_kind",
    "actor_id",
    "person_id",
    "purpose",
    "fields",
    "reason",
    "extra",
)
SEALING = ("seq", "prev_hash", "hash")

REFUSED = "the audit log is append-only"
_WHY = {
    EVENTS: (
        f"{REFUSED}: an audit event is never changed or deleted (only the sealer sets seq, prev_hash and hash, "
        "once; only an event at or below a cut of the log is deleted)"
    ),
    CHECKPOINTS: f"{REFUSED}: an audit checkpoint is never changed or deleted",
    CUTS: f"{REFUSED}: an audit cut is never changed or deleted",
    HEAD: f"{REFUSED}: the audit chain head only moves forward and is never deleted",
}


def _sealing_only(old: str, new: str, *, same: str) -> str:
    unsealed = " AND ".join(f"{old}.{c} IS NULL" for c in SEALING)
    sealed = " AND ".join(f"{new}.{c} IS NOT NULL" for c in SEALING)
    kept = " AND ".join(f"{new}.{c} {same} {old}.{c}" for c in UNSEALED_KEEPS)
    return f"{unsealed} AND {sealed} AND {kept}"


def _head_forward(old: str, new: str, *, same: str) -> str:
    kept = f"{new}.seq {same} {old}.seq AND {new}.hash {same} {old}.hash"
    return f"{new}.id {same} {old}.id AND ({new}.seq > {old}.seq OR ({kept}))"


# --- SQLite: one trigger per table and statement, each raising ABORT (IntegrityError) ----------


def _sqlite_trigger(name: str, when: str, table: str, condition: str | None = None) -> str:
    where = f" WHEN {condition}" if condition else ""
    return (
        f'CREATE TRIGGER "{name}" BEFORE {when} ON "{table}" FOR EACH ROW{where} '
        f"BEGIN SELECT RAISE(ABORT, '{_WHY[table]}'); END"
    )


_ID_TAKEN = f'EXISTS (SELECT 1 FROM "{EVENTS}" WHERE id = NEW.id)'  # noqa: S608  # names written out above
# UPDATE OR REPLACE would delete (without a DELETE trigger) the event already holding that seq or hash.
_SEAL_TAKEN = f'EXISTS (SELECT 1 FROM "{EVENTS}" WHERE (seq = NEW.seq OR hash = NEW.hash) AND id <> OLD.id)'  # noqa: S608

# A DELETE the cut allows: a sealed event at or below the greatest cut_seq (its signature is
# checked by ``verify``, which names a cut the key did not sign: the trigger cannot check it).
_CUT_SEQ = f'(SELECT coalesce(max(cut_seq), 0) FROM "{CUTS}")'  # noqa: S608  # names written out above
_NOT_CUT = f"OLD.seq IS NULL OR OLD.seq > {_CUT_SEQ}"


def _sqlite_triggers(*, cuts: bool) -> dict[str, str]:
    triggers = {
        "audit_event_no_update": _sqlite_trigger(
            "audit_event_no_update",
            "UPDATE",
            EVENTS,
            f"NOT ({_sealing_only('OLD', 'NEW', same='IS')}) OR {_SEAL_TAKEN}",
        ),
        "audit_event_no_delete": _sqlite_trigger("audit_event_no_delete", "DELETE", EVENTS, _NOT_CUT if cuts else None),
        "audit_event_no_replace": _sqlite_trigger(
            "audit_event_no_replace",
            "INSERT",
            EVENTS,
            " OR ".join([*(f"NEW.{c} IS NOT NULL" for c in SEALING), _ID_TAKEN]),
        ),
        "audit_checkpoint_no_update": _sqlite_trigger("audit_checkpoint_no_update", "UPDATE", CHECKPOINTS),
        "audit_checkpoint_no_delete": _sqlite_trigger("audit_checkpoint_no_delete", "DELETE", CHECKPOINTS),
        "audit_checkpoint_no_replace": _sqlite_trigger(
            "audit_checkpoint_no_replace",
            "INSERT",
            CHECKPOINTS,
            f'EXISTS (SELECT 1 FROM "{CHECKPOINTS}" WHERE id = NEW.id OR first_seq = NEW.first_seq)',  # noqa: S608
        ),
        "audit_head_no_rewind": _sqlite_trigger(
            "audit_head_no_rewind", "UPDATE", HEAD, f"NOT ({_head_forward('OLD', 'NEW', same='IS')})"
        ),
        "audit_head_no_delete": _sqlite_trigger("audit_head_no_delete", "DELETE", HEAD),
        "audit_head_no_replace": _sqlite_trigger(
            "audit_head_no_replace",
            "INSERT",
            HEAD,
            f'EXISTS (SELECT 1 FROM "{HEAD}" WHERE id = NEW.id)',  # noqa: S608
        ),
    }
    if cuts:
        triggers |= {
            "audit_cut_no_update": _sqlite_trigger("audit_cut_no_update", "UPDATE", CUTS),
            "audit_cut_no_delete": _sqlite_trigger("audit_cut_no_delete", "DELETE", CUTS),
            "audit_cut_no_replace": _sqlite_trigger(
                "audit_cut_no_replace",
                "INSERT",
                CUTS,
                f'EXISTS (SELECT 1 FROM "{CUTS}" WHERE id = NEW.id OR cut_seq = NEW.cut_seq)',  # noqa: S608
            ),
        }
    return triggers


SQLITE_TRIGGERS = _sqlite_triggers(cuts=True)


# --- PostgreSQL: PL/pgSQL functions raising restrict_violation (IntegrityError) ---------------


def _pg_body(table: str, allowed: str | None, deleted: str | None = None) -> str:
    allow = f"IF TG_OP = 'UPDATE' AND {allowed} THEN RETURN NEW; END IF; " if allowed else ""
    # Nested: OLD is NULL in the TRUNCATE (statement) trigger, which shares the function.
    if deleted:
        allow += f"IF TG_OP = 'DELETE' THEN IF {deleted} THEN RETURN OLD; END IF; END IF; "
    return (
        f"BEGIN {allow}RAISE EXCEPTION USING ERRCODE = 'restrict_violation', "
        f"MESSAGE = '{_WHY[table]}', DETAIL = TG_OP || ' on ' || TG_TABLE_NAME || ' refused'; END"
    )


def _pg_functions(*, cuts: bool) -> dict[str, str]:
    cut = f"OLD.seq IS NOT NULL AND OLD.seq <= {_CUT_SEQ}" if cuts else None
    functions = {
        "piwarden_audit_event_guard": _pg_body(EVENTS, _sealing_only("OLD", "NEW", same="IS NOT DISTINCT FROM"), cut),
        "piwarden_audit_checkpoint_guard": _pg_body(CHECKPOINTS, None),
        "piwarden_audit_head_guard": _pg_body(HEAD, _head_forward("OLD", "NEW", same="IS NOT DISTINCT FROM")),
    }
    if cuts:
        functions["piwarden_audit_cut_guard"] = _pg_body(CUTS, None)
    return functions


PG_FUNCTIONS = _pg_functions(cuts=True)

# pg_trigger.tgtype bits
_ROW, _BEFORE, _DELETE, _UPDATE, _TRUNCATE = 1, 2, 8, 16, 32


def _pg_triggers(*, cuts: bool) -> dict[str, tuple[str, str, bool, str, int]]:
    """name: (table, events, row level, function, tgtype)"""
    tables = [
        (EVENTS, "audit_event_append_only", "audit_event_no_truncate", "piwarden_audit_event_guard"),
        (
            CHECKPOINTS,
            "audit_checkpoint_append_only",
            "audit_checkpoint_no_truncate",
            "piwarden_audit_checkpoint_guard",
        ),
        (HEAD, "audit_head_forward_only", "audit_head_no_truncate", "piwarden_audit_head_guard"),
    ]
    if cuts:
        tables.append((CUTS, "audit_cut_append_only", "audit_cut_no_truncate", "piwarden_audit_cut_guard"))
    triggers: dict[str, tuple[str, str, bool, str, int]] = {}
    for table, rows, truncate, function in tables:
        triggers[rows] = (table, "UPDATE OR DELETE", True, function, _ROW | _BEFORE | _UPDATE | _DELETE)
        triggers[truncate] = (table, "TRUNCATE", False, function, _BEFORE | _TRUNCATE)
    return triggers


PG_TRIGGERS = _pg_triggers(cuts=True)


def _install_sql(vendor: str, *, cuts: bool = True) -> list[str]:
    if vendor == "sqlite":
        return [
            s
            for name, create in _sqlite_triggers(cuts=cuts).items()
            for s in (f'DROP TRIGGER IF EXISTS "{name}"', create)
        ]
    if vendor == "postgresql":
        functions = [
            f'CREATE OR REPLACE FUNCTION "{name}"() RETURNS trigger LANGUAGE plpgsql AS $guard$ {body} $guard$'
            for name, body in _pg_functions(cuts=cuts).items()
        ]
        triggers = [
            f'CREATE OR REPLACE TRIGGER "{name}" BEFORE {events} ON "{table}" '
            f'FOR EACH {"ROW" if row else "STATEMENT"} EXECUTE FUNCTION "{function}"()'
            for name, (table, events, row, function, _) in _pg_triggers(cuts=cuts).items()
        ]
        return functions + triggers
    return []


def _remove_sql(vendor: str, *, cuts: bool = True) -> list[str]:
    if vendor == "sqlite":
        return [f'DROP TRIGGER IF EXISTS "{name}"' for name in _sqlite_triggers(cuts=cuts)]
    if vendor == "postgresql":
        triggers = [
            f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"' for name, (table, *_) in _pg_triggers(cuts=cuts).items()
        ]
        return triggers + [f'DROP FUNCTION IF EXISTS "{name}"()' for name in _pg_functions(cuts=cuts)]
    return []


VENDORS = ("sqlite", "postgresql")
# By vendor: what the migrations run forwards and backwards.
INSTALL = {vendor: _install_sql(vendor) for vendor in VENDORS}
REMOVE = {vendor: _remove_sql(vendor) for vendor in VENDORS}
# 0009_append_only_triggers, from before the cut (its table did not exist yet): every event DELETE refused.
INSTALL_BEFORE_CUTS = {vendor: _install_sql(vendor, cuts=False) for vendor in VENDORS}
REMOVE_BEFORE_CUTS = {vendor: _remove_sql(vendor, cuts=False) for vendor in VENDORS}
# 0014_append_only_cut's reverse: the cut's own triggers dropped, the triggers of 0009 put back.
_CUT_ONLY = {"sqlite": ["audit_cut_no_update", "audit_cut_no_delete", "audit_cut_no_replace"]}
BACK_TO_BEFORE_CUTS = {
    "sqlite": [f'DROP TRIGGER IF EXISTS "{name}"' for name in _CUT_ONLY["sqlite"]] + INSTALL_BEFORE_CUTS["sqlite"],
    "postgresql": [
        f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"' for name, (table, *_) in PG_TRIGGERS.items() if table == CUTS
    ]
    + ['DROP FUNCTION IF EXISTS "piwarden_audit_cut_guard"()']
    + INSTALL_BEFORE_CUTS["postgresql"],
}


def install(connection: Any) -> None:
    with connection.cursor() as cursor:
        for statement in INSTALL.get(connection.vendor, []):
            cursor.execute(statement)


def remove(connection: Any) -> None:
    """Drop the triggers (the migration's reverse; in tests, the attacker who holds DDL rights)."""
    with connection.cursor() as cursor:
        for statement in REMOVE.get(connection.vendor, []):
            cursor.execute(statement)


def around_flush(vendor: str, tables: Sequence[str], statements: list[str]) -> list[str]:
    """``flush``'s statements with the triggers dropped before and put back after, when it empties
    an audit table (the backends' ``sql_flush``)."""
    # SQLite's flush may add tables that reference the ones asked for (allow_cascade): look at both.
    touched = any(t in TABLES for t in tables) or any(t in s for s in statements for t in TABLES)
    if not touched:
        return statements
    return [*REMOVE.get(vendor, []), *statements, *INSTALL.get(vendor, [])]


def missing(connection: Any) -> list[str]:
    """The triggers that are not in place as installed (absent, disabled or altered), by name."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            found = dict(cursor.fetchall())
        return [name for name, create in SQLITE_TRIGGERS.items() if found.get(name) != create]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.tgname, c.relname, t.tgenabled, t.tgtype, p.proname, p.prosrc "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE NOT t.tgisinternal AND c.relname = ANY(%s) AND pg_table_is_visible(c.oid)",
                [list(TABLES)],
            )
            found = {name: rest for name, *rest in cursor.fetchall()}
        wrong = []
        for name, (table, _, _, function, tgtype) in PG_TRIGGERS.items():
            # tgenabled: 'O' fires (origin and local), 'A' always; 'D' disabled, 'R' only on replicas.
            expected = (table, tgtype, function, f" {PG_FUNCTIONS[function]} ")
            have = found.get(name)
            if have is None or have[1] not in ("O", "A") or (have[0], *have[2:]) != expected:
                wrong.append(name)
        return wrong
    return []
