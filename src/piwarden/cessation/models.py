"""The site's cessation (policy §三(二) para 2; PIPL 47(1)(2)): announced, withdrawn, carried out.

A :class:`Cessation` is the operator's announcement that the site stops on ``ceases_on``.  At most
one is live at a time (``live`` is True for it and NULL once it is withdrawn: a unique column
allows many NULLs).  From the announcement the site collects nothing new, every page says so, and
every person we can reach gets one :class:`CessationNotice`; on the day it is carried out: every
person's data erased through the people registry's erasers, what the law keeps restricted.

The row holds no personal data: the date, the operator's reason (why the site ceases, a business
decision), and the times and counts of each step.  A notice row links a person to the
announcement with the times of its sending, and nothing else.
"""

from __future__ import annotations

from django.db import models


class Cessation(models.Model):
    ceases_on = models.DateField()
    reason = models.CharField(max_length=500)
    announced_at = models.DateTimeField()
    live = models.BooleanField(null=True, unique=True, default=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.CharField(max_length=500, blank=True)
    execution_started_at = models.DateTimeField(null=True, blank=True)
    persons_erased = models.PositiveIntegerField(default=0)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-announced_at"]

    def __str__(self) -> str:
        return f"Cessation on {self.ceases_on:%Y-%m-%d}"


class CessationNotice(models.Model):
    """One person's notice of one announcement: exactly one per person (the unique pair).

    ``claimed_at`` is set, in the transaction that reads the address, before the message is sent;
    ``sent_at`` once the mail server accepted it.  A notice claimed but never marked sent (the
    process died while talking to the mail server) is not sent again by itself: the operator
    decides (``piwarden cessation notify --retry-unconfirmed``), since the person may have it.
    """

    cessation = models.ForeignKey(Cessation, on_delete=models.CASCADE, related_name="notices")
    person = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="cessation_notices")
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    # Why no notice went out: the person was erased, or no source holds an address any more.
    skipped = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cessation", "person"], name="one_notice_per_person")]

    def __str__(self) -> str:
        return f"Notice {self.pk} of {self.cessation}"
