from typing import Any

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "piwarden.accounts"
    label = "accounts"
    verbose_name = "Visitor accounts"

    def ready(self) -> None:
        from piwarden.children import signals  # noqa: PLC0415  # apps are loaded now

        signals.guardian_consented.connect(_guardian_consented, dispatch_uid="accounts.guardian_consented")

        from piwarden.accounts.sessions import dismissed_notice  # noqa: PLC0415
        from piwarden.policy.notice import register_dismissal_record  # noqa: PLC0415

        register_dismissal_record("accounts", dismissed_notice)  # "recorded for account holders" (policy §十)


def _guardian_consented(sender: Any, person: Any, **kwargs: Any) -> None:
    """A guardian consented for a child (the children app's one-use link): the child's account, if
    the child signed up for one, becomes usable (once its own address is confirmed too)."""
    from piwarden.accounts.actions import guardian_consented  # noqa: PLC0415
    from piwarden.accounts.models import Account  # noqa: PLC0415

    account = Account.objects.filter(person_id=person.pk).first()
    if account is not None:
        guardian_consented(account)
