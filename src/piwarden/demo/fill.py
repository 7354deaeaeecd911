"""Synthetic people and their activity, written through the real models' encryption (``piwarden demo``).

Each person is made as the site makes them: :func:`piwarden.people.actions.new_person` (a Tink
data key generated and wrapped under the KEK, the blind indexes of the e-mail and phone number);
their consultation requests, rights requests, request steps and one-time codes are sealed field
by field under that key by ``EncryptedTextField`` (:func:`piwarden.prepared.prepare_insert` runs
the fields' own ``pre_save``); consent records are those of
:func:`piwarden.consent.actions.prepare_consent`; audit events carry the digest ``record_event``
gives them (left unsealed, as requests leave them: ``piwarden audit seal`` chains them).  Only the
writing differs from the site's: rows are prepared in batches of people (in worker processes)
and inserted with one ``executemany`` per table and batch (a ``COPY`` on PostgreSQL), and the
dates are spread over the two years the consultation category is kept (``retention_days`` 730).

Each person's values follow from (seed, number) alone (:func:`person_values`), so a benchmark
finds a demo person again by the e-mail address, as a rights request would.

*Activity rows* are every row about a person other than their ``Person`` and data key: requests,
consent records, audit events, rights requests with their steps and codes, and the finished
background tasks of the last 14 days' requests (older ones are gone with their retention).  The
``activity`` of a :class:`Plan` is shared out evenly: every person has one consultation (five rows:
the request, its consent, three events), then what their share leaves is made of further requests,
acknowledgements, staff views of the request and, for a few, an access request answered.
"""

from __future__ import annotations

import datetime
import multiprocessing
import random
import re
import secrets
import signal
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from django.tasks import TaskResultStatus
from django.utils import timezone, translation
from django_tasks_db.models import DBTaskResult

from piwarden.audit.models import CONTENT_FIELDS, ActorKind, AuditEvent, EventType, canonical_json, column_of
from piwarden.audit.models import content_digest as event_digest
from piwarden.consent.actions import prepare_consent
from piwarden.consent.models import ConsentRecord
from piwarden.inquiries.forms import ConsultationForm
from piwarden.inquiries.models import PERSONAL_FIELDS, Inquiry, InquiryStatus
from piwarden.inquiries.tasks import acknowledge_inquiry, notify_sales
from piwarden.people.actions import new_person
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.prepared import PreparedInsert, prepare_insert
from piwarden.rights import clock
from piwarden.rights.access import PURPOSE as RIGHTS_PURPOSE
from piwarden.rights.codes import code_digest, new_code
from piwarden.rights.models import (
    CODE_LIFETIME,
    ActingAs,
    CodePurpose,
    RequestKind,
    RequestStatus,
    RequestStep,
    RightsRequest,
    VerificationCode,
)
from piwarden.staff.actions import create_staff
from piwarden.vault.models import DataKey

CONSULTATION_PURPOSE = "respond_inquiry"
FIRST_ROWS = 5  # a person's first consultation: the request, its consent, three audit events
AGAIN_ROWS = 4  # a later one: the request, its consent, two events
RIGHTS_ROWS = 9  # an access request answered: the request, three steps, the code, four events
TASK_ROWS = 2  # the acknowledgement and the sales notice of a request of the last 14 days
HISTORY = datetime.timedelta(days=730)  # the consultation category's retention
TASKS_KEPT = datetime.timedelta(days=14)  # the queued_tasks category's retention

# The tables written, in the order of their foreign keys.
MODELS: tuple[type[Model], ...] = (
    DataKey,
    Person,
    Inquiry,
    ConsentRecord,
    RightsRequest,
    RequestStep,
    VerificationCode,
    DBTaskResult,
    AuditEvent,
)
PERSON_TABLES = frozenset({DataKey._meta.db_table, Person._meta.db_table})

_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("黄", "huang"),
    ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"), ("高", "gao"), ("罗", "luo"), ("欧阳", "ouyang"),
)  # fmt: skip
_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("秀英", "xiuying"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"),
    ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀兰", "xiulan"), ("霞", "xia"),
    ("平", "ping"), ("刚", "gang"), ("建华", "jianhua"), ("子涵", "zihan"), ("浩然", "haoran"), ("欣怡", "xinyi"),
)  # fmt: skip
_CITIES = ("北京", "上海", "深圳", "杭州", "成都", "武汉", "南京", "广州", "西安", "天津", "苏州", "重庆")
_NAMES = ("华信", "云启", "恒通", "中科", "数安", "远景", "新锐", "博睿", "启明", "同创", "长风", "汇智")
_KINDS = (
    "科技有限公司", "信息技术有限公司", "网络安全有限公司", "银行股份有限公司", "能源集团有限公司",
    "医疗科技有限公司", "证券股份有限公司", "制造有限公司", "电信分公司", "大学",
)  # fmt: skip
_POSITIONS = (
    "信息安全经理", "首席信息官", "IT运维工程师", "安全架构师", "采购经理", "技术总监", "网络管理员",
    "合规专员", "数据保护官", "项目经理", "Security Engineer", "IT Director",
)  # fmt: skip
_REGIONS = ("CN",) * 17 + ("HK", "MO", "SG")
_MOBILE = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "180", "181", "182", "183", "185", "186", "187", "188", "189",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net")
_REVEAL_REASONS = (
    "回复客户咨询，电话联系",
    "Calling back about the request",
    "客户来电补充需求，核对联系方式",
    "准备报价，确认公司名称",
)
_OUTCOME = "我们已按您的请求准备了您的个人信息副本，请在五天内下载。"


def _rng(seed: int, number: int, stream: int) -> random.Random:
    return random.Random((seed << 48) ^ (number << 2) ^ stream)  # noqa: S311  # synthetic data, not secrets


def person_values(seed: int, number: int) -> dict[str, str]:
    """The consultation form's values of demo person ``number`` (and ``language``): the same for a seed.

    The e-mail address is unique per (seed, number): ``<given>.<surname>.<seed>-<number>@example.…``.
    """
    rng = _rng(seed, number, 0)
    surname, surname_py = rng.choice(_SURNAMES)
    given, given_py = rng.choice(_GIVEN)
    language = "en" if rng.random() < 0.15 else "zh-hans"  # noqa: PLR2004  # one visitor in seven reads English
    declaration = load_declaration()
    return {
        "name": surname + given if language == "zh-hans" else f"{given_py.title()} {surname_py.title()}",
        "phone": "+86" + rng.choice(_MOBILE) + f"{rng.randrange(10**8):08d}",
        "email": f"{given_py}.{surname_py}.{seed}-{number}@{rng.choice(_DOMAINS)}",
        "company": rng.choice(_CITIES) + rng.choice(_NAMES) + rng.choice(_KINDS),
        "industry": rng.choice(declaration.industries).id,
        "position": rng.choice(_POSITIONS),
        "region": rng.choice(_REGIONS),
        "product": rng.choice(declaration.products).id,
        "language": language,
    }


@dataclass(frozen=True)
class Plan:
    """How many people and activity rows, from which seed; ``now`` ends the two years of history."""

    persons: int
    activity: int
    seed: int = 1
    now: datetime.datetime = field(default_factory=timezone.now)

    def share(self, number: int) -> int:
        """The activity rows of person ``number``.

        An even share (the remainder to the first ones), moved between the two people of a pair
        (0 and 1, 2 and 3 …) by a random amount that leaves each at least :data:`FIRST_ROWS`: some
        people do more than others, and the total is exactly ``activity``.
        """
        base, extra = divmod(self.activity, self.persons)
        share = base + (1 if number < extra else 0)
        pair = number // 2
        if 2 * pair + 1 >= self.persons:
            return share  # the last person of an odd number has no pair
        moved = _rng(self.seed, pair, 2).randint(0, max(0, base - FIRST_ROWS))
        return share + moved if number % 2 == 0 else share - moved


@dataclass(frozen=True)
class Staff:
    """The demo's staff accounts, who appear in the audit events (ids)."""

    sales: int
    officer: int


@dataclass
class Batch:
    """The prepared rows of some people: INSERT statement → parameter rows, in the order of :data:`MODELS`."""

    rows: dict[str, list[Sequence[Any]]]
    counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def empty(cls) -> Batch:
        return cls({statement: [] for statement in _statements()})

    def add(self, prepared: PreparedInsert) -> None:
        # Binary values as bytes (SQLite's driver takes memoryviews, which cannot be sent between processes).
        params = tuple(bytes(v) if isinstance(v, memoryview) else v for v in prepared.params)
        self.rows[prepared.sql].append(params)
        self.counts[type(prepared.instance)._meta.db_table] += 1

    def activity(self) -> int:
        return sum(n for table, n in self.counts.items() if table not in PERSON_TABLES)


_CONSENT_TEXTS: dict[str, str] = {}
_CALENDAR: list[clock.WorkingCalendar] = []  # loaded once by the main process, before any fork


def _consent_text(language: str) -> str:
    if language not in _CONSENT_TEXTS:
        with translation.override(language):
            _CONSENT_TEXTS[language] = ConsultationForm.consent_text()
    return _CONSENT_TEXTS[language]


def _statements(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The INSERT of each table, as :func:`prepare_insert` builds it (and the audit log's for events)."""
    found = []
    for model in MODELS:
        if model is AuditEvent:
            found.append(_event_sql(using))
            continue
        db = connections[using]
        fields = [f for f in model._meta.local_concrete_fields if not f.generated]
        columns = ", ".join(db.ops.quote_name(f.column or f.name) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        found.append(f"INSERT INTO {db.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({marks})")  # noqa: S608  # names from the model
    return found


def _event_sql(using: str) -> str:
    db = connections[using]
    names = [*CONTENT_FIELDS, "digest"]
    cast = "::jsonb" if db.vendor == "postgresql" else ""
    marks = ", ".join(f"%s{cast}" if name in ("fields", "extra") else "%s" for name in names)
    columns = ", ".join(db.ops.quote_name(column_of(name)) for name in names)
    return f"INSERT INTO {db.ops.quote_name(AuditEvent._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608  # names from the model


def _backdated(prepared: PreparedInsert, **values: Any) -> PreparedInsert:
    """``prepared`` with these fields (``auto_now_add`` ones among them) set to other values."""
    model = type(prepared.instance)
    db = connections[prepared.using]
    fields = [f for f in model._meta.local_concrete_fields if not f.generated]
    params = list(prepared.params)
    for position, f in enumerate(fields):
        if f.name in values:
            setattr(prepared.instance, f.attname, values[f.name])
            params[position] = f.get_db_prep_save(values[f.name], db)
    return PreparedInsert(prepared.instance, prepared.sql, tuple(params), prepared.using)


class _Person:
    """Prepares the rows of one demo person into a batch."""

    def __init__(self, plan: Plan, number: int, staff: Staff, batch: Batch, sql: str) -> None:
        self.plan, self.number, self.staff, self.batch, self.event_sql = plan, number, staff, batch, sql
        self.rng = _rng(plan.seed, number, 1)
        self.values = person_values(plan.seed, number)
        self.language = self.values["language"]
        self.db = connections[DEFAULT_DB_ALIAS]
        self.person_field = AuditEvent._meta.get_field("person").target_field
        self.unacknowledged: list[Inquiry] = []
        self.inquiries: list[Inquiry] = []

    def make(self) -> None:
        when = self.plan.now - HISTORY * self.rng.random()
        made = new_person(email=self.values["email"], phone=self.values["phone"])
        self.person = made.person
        key_row, person_row = made.rows
        self.batch.add(_backdated(key_row, created_at=when))
        self.batch.add(_backdated(person_row, created_at=when))
        self.event(when, EventType.PERSON_CREATED, ActorKind.VISITOR)
        left = self.plan.share(self.number) - self.consultation(when, first=True)
        while left > 0:
            when = self.later(when)
            roll = self.rng.random()
            if left >= RIGHTS_ROWS and roll < 0.15:  # noqa: PLR2004  # a few ask for their data
                left -= self.rights_request(when)
            elif left >= AGAIN_ROWS and roll < 0.3:  # noqa: PLR2004
                left -= self.consultation(when, first=False, room=left)
            elif self.unacknowledged:
                self.acknowledge(when)
                left -= 1
            else:
                self.reveal(when)
                left -= 1

    def later(self, when: datetime.datetime) -> datetime.datetime:
        return when + (self.plan.now - when) * self.rng.random() * 0.3

    def consultation(self, when: datetime.datetime, *, first: bool, room: int = 0) -> int:
        values = {name: self.values[name] for name in (*PERSONAL_FIELDS, "product")}
        age = self.plan.now - when
        inquiry = Inquiry(
            person=self.person,
            data_key_id=self.person.data_key_id,
            submission_token=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            language=self.language,
            status=InquiryStatus.NEW if age < TASKS_KEPT else InquiryStatus.CLOSED,
            acknowledged_at=when + datetime.timedelta(seconds=3),
            sales_notified_at=when + datetime.timedelta(seconds=4),
            assigned_to_id=self.staff.sales,  # the demo's salesperson answers (and reveals) them all
            **values,
        )
        self.batch.add(_backdated(prepare_insert(inquiry), submitted_at=when))
        consent = prepare_consent(
            self.person,
            CONSULTATION_PURPOSE,
            channel="web:consultation",
            language=self.language,
            shown_text=_consent_text(self.language),
        )
        self.batch.add(_backdated(consent.row, given_at=when))
        record = consent.row.instance
        extra = {"consent": str(record.pk), "kind": "ordinary", "channel": "web:consultation"}
        self.event(
            when,
            EventType.CONSENT_GIVEN,
            ActorKind.VISITOR,
            purpose=CONSULTATION_PURPOSE,
            extra={**extra, "policy_version": consent.policy_version},
        )
        self.event(
            when,
            EventType.INQUIRY_SUBMITTED,
            ActorKind.VISITOR,
            purpose=CONSULTATION_PURPOSE,
            fields=PERSONAL_FIELDS,
            extra={"inquiry": inquiry.reference, "product": inquiry.product},
        )
        made = FIRST_ROWS if first else AGAIN_ROWS
        left = (self.plan.share(self.number) - made) if first else room - made
        if age < TASKS_KEPT and left >= TASK_ROWS:
            for task in (acknowledge_inquiry, notify_sales):
                self.finished_task(task.module_path, inquiry, when)
            made += TASK_ROWS
        else:
            self.unacknowledged.append(inquiry)
        self.inquiries.append(inquiry)
        return made

    def finished_task(self, path: str, inquiry: Inquiry, when: datetime.datetime) -> None:
        done = when + datetime.timedelta(seconds=2)
        row: DBTaskResult[Any, Any] = DBTaskResult(
            id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            status=TaskResultStatus.SUCCESSFUL,
            started_at=done,
            finished_at=done,
            args_kwargs={"args": [str(inquiry.pk)], "kwargs": {}},
            task_path=path,
            worker_ids=["demo"],
            backend_name="default",
            run_after=when,
            return_value="sent",
        )
        self.batch.add(_backdated(prepare_insert(row), enqueued_at=when))

    def acknowledge(self, when: datetime.datetime) -> None:
        inquiry = self.unacknowledged.pop(0)
        self.event(
            when,
            EventType.INQUIRY_ACKNOWLEDGED,
            ActorKind.SYSTEM,
            purpose=CONSULTATION_PURPOSE,
            extra={"inquiry": inquiry.reference},
        )

    def reveal(self, when: datetime.datetime) -> None:
        inquiry = self.rng.choice(self.inquiries)
        fields = self.rng.sample(PERSONAL_FIELDS, self.rng.randint(1, 3))
        self.event(
            when,
            EventType.PII_REVEALED,
            ActorKind.STAFF,
            actor=self.staff.sales,
            purpose=CONSULTATION_PURPOSE,
            fields=fields,
            reason=self.rng.choice(_REVEAL_REASONS),
            extra={"inquiry": inquiry.reference, "basis": "consent", "categories": ["consultation"]},
        )

    def rights_request(self, when: datetime.datetime) -> int:
        verified = when + datetime.timedelta(minutes=self.rng.randint(1, 9))
        received = clock.day_of_receipt(when)
        due = clock.due_date(received, _CALENDAR[0] if _CALENDAR else clock.WorkingCalendar())
        done = verified + datetime.timedelta(days=self.rng.randint(1, 10))
        request = RightsRequest(
            person=self.person,
            data_key_id=self.person.data_key_id,
            kind=self.rng.choice((RequestKind.ACCESS, RequestKind.ACCESS, RequestKind.COPY)),
            status=RequestStatus.COMPLETED,
            language=self.language,
            acting_as=ActingAs.SELF,
            email=self.values["email"],
            details="",
            submitted_at=when,
            verified_at=verified,
            received_on=received,
            due_on=due.date,
            due_provisional=due.provisional,
            decided_at=done,
            completed_at=done,
            outcome=_OUTCOME,
            receipt_sent_at=verified,
            fulfilled_at=done,
        )
        self.batch.add(prepare_insert(request))
        for at, status, note in (
            (when, RequestStatus.AWAITING_VERIFICATION, ""),
            (verified, RequestStatus.RECEIVED, ""),
            (done, RequestStatus.COMPLETED, _OUTCOME),
        ):
            step = RequestStep(
                person=self.person,
                data_key_id=self.person.data_key_id,
                request=request,
                at=at,
                status=status,
                note=note,
            )
            self.batch.add(prepare_insert(step))
        code = VerificationCode(
            person=self.person,
            data_key_id=self.person.data_key_id,
            request=request,
            purpose=CodePurpose.VERIFY,
            code_hash=code_digest(request.pk, CodePurpose.VERIFY, new_code()),
            created_at=when,
            expires_at=when + CODE_LIFETIME,
            used_at=verified,
            sealed_code=None,
        )
        self.batch.add(prepare_insert(code))
        ref = {"request": request.reference}
        asked = {"kind": request.kind, "acting_as": request.acting_as}
        receipt = {"received_on": received.isoformat(), "due_on": due.date.isoformat(), "provisional": due.provisional}
        purpose = RIGHTS_PURPOSE
        self.event(
            when,
            EventType.RIGHTS_REQUEST_SUBMITTED,
            ActorKind.VISITOR,
            purpose=purpose,
            fields=("email", "details"),
            extra={**ref, **asked},
        )
        self.event(
            verified, EventType.RIGHTS_REQUEST_VERIFIED, ActorKind.VISITOR, purpose=purpose, extra={**ref, **receipt}
        )
        self.event(
            done,
            EventType.RIGHTS_COMPLETED,
            ActorKind.STAFF,
            actor=self.staff.officer,
            purpose=purpose,
            extra={**ref, "executed": "archive"},
        )
        built = {"reference": request.reference, "records": 12, "categories": 8, "size": 9000}
        self.event(done, EventType.ARCHIVE_BUILT, ActorKind.SYSTEM, purpose=purpose, extra=built)
        return RIGHTS_ROWS

    def event(
        self,
        when: datetime.datetime,
        event_type: EventType,
        actor_kind: ActorKind,
        *,
        actor: int | None = None,
        purpose: str = "",
        fields: Sequence[str] = (),
        reason: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """One audit event about the person, with the digest ``record_event`` computes for it."""
        fields_json = canonical_json(sorted(fields))
        extra_json = canonical_json(extra or {})
        person_id = str(self.person.pk)
        digest = event_digest(
            (
                when.isoformat(),
                str(event_type),
                str(actor_kind),
                actor,
                person_id,
                purpose,
                fields_json,
                reason,
                extra_json,
            )
        )
        row = (
            self.db.ops.adapt_datetimefield_value(when),
            str(event_type),
            str(actor_kind),
            actor,
            self.person_field.get_db_prep_value(self.person.pk, self.db),
            purpose,
            fields_json,
            reason,
            extra_json,
            digest,
        )
        self.batch.rows[self.event_sql].append(row)
        self.batch.counts[AuditEvent._meta.db_table] += 1


def prepare(plan: Plan, staff: Staff, start: int, stop: int) -> Batch:
    """The rows of people ``start`` to ``stop - 1``, encrypted and ready to be written."""
    batch = Batch.empty()
    sql = _event_sql(DEFAULT_DB_ALIAS)
    for number in range(start, stop):
        _Person(plan, number, staff, batch, sql).make()
    return batch


_INSERT = re.compile(r"INSERT INTO (\S+) \((.*)\) VALUES ")


def write(batch: Batch) -> None:
    """One transaction: one ``executemany`` per table; on PostgreSQL one ``COPY`` per table instead.

    ``COPY … FROM STDIN`` takes the same rows (psycopg converts each value as for the INSERT) at a
    third of the time: the server parses and plans no statement per row, and the client sends no
    Bind and Execute per row (measured on 4 000 people: 5.2 to 8.0 s against 2.7 to 3.0 s of wall time,
    0.7 against 0.2 s of the client's CPU, at load 19).
    """
    db = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic(), db.cursor() as cursor:
        for statement, rows in batch.rows.items():
            if not rows:
                continue
            if db.vendor != "postgresql":
                cursor.executemany(statement, rows)
                continue
            found = _INSERT.match(statement)
            assert found is not None  # noqa: S101  # _statements() builds them so
            table, columns = found.groups()
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def _prepare_and_write(plan: Plan, staff: Staff, start: int, stop: int) -> Counter[str]:
    batch = prepare(plan, staff, start, stop)
    write(batch)
    return batch.counts


def demo_staff() -> Staff:
    """The two staff accounts of the demo (a salesperson, a privacy officer), made once.

    Real accounts through ``create_staff`` (audited, a TOTP authenticator), with a random
    password nobody is told: they only appear as the actors of the demo's audit events.
    """
    ids = []
    for username, role in (("demo-sales", "sales"), ("demo-privacy-officer", "privacy_officer")):
        user = User.objects.filter(username=username).first()
        if user is None:
            made = create_staff(
                username=username, email=f"{username}@example.com", password=secrets.token_urlsafe(32), role=role
            )
            user = made.user
        ids.append(user.pk)
    return Staff(sales=ids[0], officer=ids[1])


@dataclass
class Filled:
    counts: Counter[str]
    seconds: float

    @property
    def activity(self) -> int:
        return sum(n for table, n in self.counts.items() if table not in PERSON_TABLES)


Report = Callable[[int], None]  # people written so far


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fill(plan: Plan, *, workers: int, batch_size: int, report: Report | None = None) -> Filled:
    """Write the plan's people and activity; ``workers`` processes prepare (0: this one alone).

    On SQLite (one writer at a time) the workers prepare and this process writes; on PostgreSQL
    each worker writes what it prepared, in a transaction of its own per batch.
    """
    started = time.perf_counter()
    staff = demo_staff()
    _CALENDAR[:] = [clock.load_calendar()]
    load_declaration()
    ranges = [(start, min(start + batch_size, plan.persons)) for start in range(0, plan.persons, batch_size)]
    counts: Counter[str] = Counter()
    done = 0

    def written(start: int, stop: int, batch_counts: Counter[str]) -> None:
        nonlocal done
        counts.update(batch_counts)
        done += stop - start
        if report is not None:
            report(done)

    if workers == 0:
        for start, stop in ranges:
            batch = prepare(plan, staff, start, stop)
            write(batch)
            written(start, stop, batch.counts)
        return Filled(counts, time.perf_counter() - started)
    parallel = connections[DEFAULT_DB_ALIAS].vendor != "sqlite"
    connections.close_all()  # a forked worker must not share this process's connection
    context = multiprocessing.get_context("fork")
    # Workers take SIGTERM's default again (a handler of this process's, inherited by fork, would
    # let Pool.terminate() wait for them for ever), and the pool is closed and joined, not
    # terminated, when every batch is done.
    pool = context.Pool(workers, initializer=_default_signals)
    try:
        pending: deque[tuple[int, int, Any]] = deque()
        job = _prepare_and_write if parallel else prepare

        def collect() -> None:
            start, stop, result = pending.popleft()
            got = result.get()
            if parallel:
                written(start, stop, got)
            else:
                write(got)
                written(start, stop, got.counts)

        for start, stop in ranges:
            while len(pending) >= 2 * workers:
                collect()
            pending.append((start, stop, pool.apply_async(job, (plan, staff, start, stop))))
        while pending:
            collect()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return Filled(counts, time.perf_counter() - started)


class ProgressBar:
    """A progress bar on standard error: redrawn in place on a terminal, a line every 5 % otherwise."""

    WIDTH = 30

    def __init__(self, total: int, label: str, out: Any = None) -> None:
        self.total, self.label, self.out = max(total, 1), label, out or sys.stderr
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.last_step = -1
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        fraction = done / self.total
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate else 0.0
        filled = int(self.WIDTH * fraction)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,} "
            f"{fraction:6.1%}  {rate:,.0f}/s  {elapsed:,.0f} s, about {eta:,.0f} s left"
        )
        if self.tty:
            if now - self.last_drawn >= 0.2 or done >= self.total:  # noqa: PLR2004
                self.out.write("\r" + line + ("\n" if done >= self.total else ""))
                self.out.flush()
                self.last_drawn = now
            return
        step = int(fraction * 20)
        if step != self.last_step:
            self.out.write(line + "\n")
            self.out.flush()
            self.last_step = step
