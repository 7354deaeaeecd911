"""piwarden cessation announce --date YYYY-MM-DD --reason TEXT | withdraw --reason TEXT | status | notify | execute"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from piwarden.audit.models import AuditEvent, EventType
from piwarden.cessation import actions, mail
from piwarden.cessation.actions import CessationRefused
from piwarden.cessation.models import Cessation, CessationNotice
from piwarden.cessation.rounds import Progress, carry_out


def day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date: a day as YYYY-MM-DD (not {value!r}).", returncode=2) from None


class Command(BaseCommand):
    help = (
        "The website's cessation (privacy policy §3(II) para 2; PIPL 47). announce: from now on every page shows "
        "the notice with the date, the forms collect nothing new, and everyone whose contact address we hold is "
        "e-mailed once (in their language); the rights portal takes requests until the day before the date. "
        "withdraw: cancel it before the date. status: where it stands, and what the law keeps. notify: send "
        "the notices not sent yet (the hourly housekeeping does it too). execute: on or after the date, erase "
        "every person's data through the erasers of every category (batches, progress, resumable: run it again "
        "after a crash), keeping restricted only what the law keeps; the housekeeping does it on the date. "
        "Every step is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        steps = parser.add_subparsers(dest="step", required=True, metavar="{announce,withdraw,status,notify,execute}")
        announce = steps.add_parser("announce", help="announce the cessation on a date, and notify everyone")
        announce.add_argument("--date", required=True, type=day, help="the day the site ceases (YYYY-MM-DD, PRC time)")
        announce.add_argument("--reason", required=True, help="why the site ceases, for the audit log (no PII)")
        announce.add_argument("--no-send", action="store_true", help="leave the sending to the housekeeping")
        withdraw = steps.add_parser("withdraw", help="withdraw the announcement before its date")
        withdraw.add_argument("--reason", required=True, help="why, for the audit log (no PII)")
        steps.add_parser("status", help="where the cessation stands, and what the law keeps")
        notify = steps.add_parser("notify", help="send the notices not sent yet")
        notify.add_argument(
            "--retry-unconfirmed",
            action="store_true",
            help="first make sendable again the notices a crash left unconfirmed (those people may get two)",
        )
        execute = steps.add_parser("execute", help="on or after the date: erase everyone (resumable)")
        execute.add_argument("--batch", type=int, default=actions.BATCH, help="persons per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["step"])(**options)
        except CessationRefused as refused:
            raise CommandError(str(refused)) from None

    def _announce(self, *, date: datetime.date, reason: str, no_send: bool, **options: Any) -> None:
        cessation = actions.announce(date, reason=reason)
        count = CessationNotice.objects.filter(cessation=cessation).count()
        self.stdout.write(
            f"Cessation announced for {date:%Y-%m-%d}: every page shows the notice, the forms collect nothing new. "
            f"{count} person(s) to notify."
        )
        if not no_send:
            self._notify(retry_unconfirmed=False)

    def _withdraw(self, *, reason: str, **options: Any) -> None:
        cessation = actions.withdraw(reason=reason)
        self.stdout.write(
            f"The cessation announced for {cessation.ceases_on:%Y-%m-%d} is withdrawn: the notice is gone from the "
            "pages and the forms collect again; notices not sent yet were dropped."
        )

    def _notify(self, *, retry_unconfirmed: bool, **options: Any) -> None:
        if retry_unconfirmed:
            self.stdout.write(f"{actions.retry_unconfirmed()} unconfirmed notice(s) made sendable again.")
        added = actions.collect_notices()
        result = mail.send_pending(progress=self._progress("notices"))
        self._end_progress()
        self.stdout.write(
            f"Notices: {result.sent} sent, {result.skipped} not needed (erased, or no address held), "
            f"{result.failed} failed{'' if not added else f'; {added} person(s) added since the announcement'}."
        )
        if result.failed:
            raise CommandError(
                f"{result.failed} notice(s) could not be sent ({result.errors[0]}); run `piwarden cessation notify` "
                "again: nobody is sent a notice twice."
            )

    def _execute(self, *, batch: int, **options: Any) -> None:
        if batch < 1:
            raise CommandError("--batch: at least 1.", returncode=2)
        carried = carry_out(batch=batch, progress=self._progress("persons erased"))
        self._end_progress()
        self.stdout.write(
            f"Cessation carried out: {carried.persons_erased} person(s) erased by this run, "
            f"{carried.total_erased} in all."
        )
        if not carried.wal_folded:
            self.stdout.write(
                "The database's write-ahead log could not be emptied (other processes are reading): old copies of "
                "the erased keys stay in it until it is overwritten; run `piwarden cessation execute` again when "
                "the site is stopped."
            )
        self._kept()

    def _status(self, **options: Any) -> None:
        cessation = Cessation.objects.order_by("-announced_at").first()
        if cessation is None:
            self.stdout.write("No cessation has been announced.")
            return
        if cessation.live is None:
            self.stdout.write(
                f"The cessation announced for {cessation.ceases_on:%Y-%m-%d} was withdrawn at "
                f"{timezone.localtime(cessation.withdrawn_at):%Y-%m-%d %H:%M} ({cessation.withdrawal_reason}). "
                "None is announced."
            )
            return
        today = timezone.localdate()
        if cessation.executed_at is not None:
            self.stdout.write(
                f"The site ceased on {cessation.ceases_on:%Y-%m-%d}; carried out at "
                f"{timezone.localtime(cessation.executed_at):%Y-%m-%d %H:%M}: "
                f"{cessation.persons_erased} person(s) erased."
            )
        else:
            when = "today" if today == cessation.ceases_on else f"in {(cessation.ceases_on - today).days} day(s)"
            if today > cessation.ceases_on:
                when = "and the date has passed"
            self.stdout.write(
                f"Announced at {timezone.localtime(cessation.announced_at):%Y-%m-%d %H:%M}: the site ceases on "
                f"{cessation.ceases_on:%Y-%m-%d} ({when}). Reason: {cessation.reason}"
            )
            if cessation.execution_started_at is not None:
                self.stdout.write(
                    f"Being carried out: {cessation.persons_erased} person(s) erased, {actions.remaining()} left "
                    "(run `piwarden cessation execute` to go on)."
                )
            elif today >= cessation.ceases_on:
                self.stdout.write(
                    "The date has come: run `piwarden cessation execute` (the housekeeping does so hourly)."
                )
        if cessation.executed_at is not None:
            # The notice rows went with their people; the audit log keeps that each was sent.
            sent = AuditEvent.objects.filter(
                event_type=EventType.CESSATION_NOTICE_SENT, extra__cessation=cessation.pk
            ).count()
            self.stdout.write(f"Notices sent: {sent}.")
            self._kept()
            return
        notices = CessationNotice.objects.filter(cessation=cessation)
        sent = notices.filter(sent_at__isnull=False).count()
        unconfirmed = notices.filter(claimed_at__isnull=False, sent_at__isnull=True, skipped="").count()
        skipped = notices.exclude(skipped="").count()
        waiting = notices.filter(claimed_at__isnull=True, skipped="").count()
        self.stdout.write(
            f"Notices: {sent} sent, {waiting} waiting, {skipped} not needed, {unconfirmed} unconfirmed"
            + (" (a crash while mailing: see `notify --retry-unconfirmed`)" if unconfirmed else "")
            + "."
        )
        self._kept()

    def _kept(self) -> None:
        self.stdout.write(
            "Kept, because the law or the audit trail requires it (restricted: their people are erased, and "
            "nothing may use them; deleted by the housekeeping when their declared retention ends):"
        )
        for item in actions.kept():
            days = "1 day" if item.retention_days == 1 else f"{item.retention_days} days"
            self.stdout.write(f"  - {item.category} ({days}): {item.reason}")

    def _progress(self, what: str) -> Progress:
        def show(done: int, total: int) -> None:
            if not total:
                return
            width = 30
            filled, percent = int(width * done / total), int(100 * done / total)
            self.stderr.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total} {what}",
                style_func=lambda text: text,
                ending="",
            )
            self.stderr.flush()

        return show

    def _end_progress(self) -> None:
        self.stderr.write("")
