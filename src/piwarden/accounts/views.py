"""The account pages (``/account/…``, ``/en/account/…``): thin views over ``accounts.actions``.

Every page works without JavaScript; the one script (``accounts/password.js``, same origin)
only shows the password's length and strength as it is typed.  A signed-in visitor is known by
``accounts.sessions`` (never by ``request.user``, which is the staff's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from piwarden.accounts import actions, passwords, sessions, throttle
from piwarden.accounts.access import account_view, pending_secret
from piwarden.accounts.forms import (
    CancelForm,
    ChangePasswordForm,
    CodeForm,
    EmailForm,
    NewPasswordForm,
    RemoveTotpForm,
    SignInForm,
    SignUpForm,
)
from piwarden.accounts.models import LOG_CATEGORY, AccountSession, LoginResult
from piwarden.accounts.tokens import account_to_reset, account_to_verify
from piwarden.accounts.totp import config_url, secret_text
from piwarden.cessation.state import accepting_new_data
from piwarden.cessation.views import closed
from piwarden.people.models import Person
from piwarden.policy.declaration import load_declaration
from piwarden.processing.gate import ProcessingRefused
from piwarden.ratelimit.decorators import rate_limit
from piwarden.ratelimit.limiter import client_address
from piwarden.security.actions import Refused, record_security_event
from piwarden.security.models import EventKind
from piwarden.site.actions import record_captcha_failure
from piwarden.site.forms import add_captcha
from piwarden.site.security_views import refusal_page

View = Callable[..., HttpResponse]
GET_POST = require_http_methods(["GET", "HEAD", "POST"])


def _too_many(request: HttpRequest, refused: Refused | None) -> HttpResponse:
    """The refusal page (piwarden.security): why, when to try again, the reference to cite for review."""
    if refused is None:  # not refused by a counter (cannot happen where it is called): a plain 429
        message = _("Too many attempts from your network. Please wait a while and try again.")
        return render(request, "accounts/message.html", {"title": _("Please wait"), "message": message}, status=429)
    response = refusal_page(request, refused)
    response.status_code = 429
    response["Retry-After"] = str(refused.retry_after)
    return response


def _client(request: HttpRequest) -> actions.Client:
    return actions.Client(client_address(request), request.META.get("HTTP_USER_AGENT", ""))


def holder_required(view: View) -> View:
    """A signed-in visitor's page; others are sent to sign in."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        session = sessions.current(request)
        if session is None:
            return redirect("accounts:sign_in")
        return view(request, session, *args, **kwargs)

    return wrapped


def _strength(request: HttpRequest) -> str:
    """The strength of the password just submitted, to show without JavaScript (never the password)."""
    submitted = request.POST.get("password", "")
    return str(passwords.STRENGTH_LABELS[passwords.strength(submitted)]) if submitted else ""


# --- sign-up and confirmation ----------------------------------------------------------------


class SignUpPageForm(SignUpForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_captcha(self)


@never_cache
@GET_POST
@rate_limit("account_sign_up", rate_setting="PIWARDEN_SIGN_UP_RATE", refuse=_too_many)
def sign_up(request: HttpRequest) -> HttpResponse:
    # The site's cessation is announced: no new account (asked fresh before storing anything).
    if not accepting_new_data(fresh=request.method == "POST"):
        return closed(request, gettext_lazy("Sign-up is closed"))
    if request.method != "POST":
        return render(request, "accounts/sign_up.html", {"form": SignUpPageForm()})
    form = SignUpPageForm(request.POST)
    if not form.is_valid():
        if "captcha" in form.errors:
            record_captcha_failure("account_sign_up")
        context = {"form": form, "strength": _strength(request)}
        return render(request, "accounts/sign_up.html", context, status=400)
    if refused := throttle.mail(request, form.cleaned_data["email"]):
        return _too_many(request, refused)
    record_security_event(request, EventKind.SIGN_UP, scope="account_sign_up")  # device and software (§一(一)1.2)
    try:
        actions.sign_up(form.to_sign_up())
    except ProcessingRefused:
        error = _(
            "You have restricted the processing of your personal information, so we cannot open an account "
            "now. Please call or e-mail us (see below)."
        )
        return render(request, "accounts/sign_up.html", {"form": SignUpPageForm(), "error": error}, status=409)
    return redirect("accounts:sign_up_sent")


@never_cache
@require_http_methods(["GET", "HEAD"])
def sign_up_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/sign_up_sent.html")


@never_cache
@GET_POST
def verify(request: HttpRequest) -> HttpResponse:
    """The e-mailed link: a page with a button (mail scanners follow links; only a POST confirms)."""
    token = (request.POST if request.method == "POST" else request.GET).get("token", "")[:300]
    account = account_to_verify(token)
    if account is None:
        message = _(
            "This link is not valid: it may have expired (after 3 days) or been used already. Sign in, or sign "
            "up again with the same address to receive a new link."
        )
        return render(request, "accounts/message.html", {"title": _("Link not valid"), "message": message}, status=404)
    if request.method != "POST":
        return render(request, "accounts/verify.html", {"token": token})
    confirmed = actions.verify_email(account)
    return render(request, "accounts/verified.html", {"pending_guardian": not confirmed.may_sign_in})


# --- sign-in and out ----------------------------------------------------------------------


class SignInCaptchaForm(SignInForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_captcha(self)


def _sign_in_page(request: HttpRequest, form: SignInForm, status: int = 200, **context: Any) -> HttpResponse:
    return render(request, "accounts/sign_in.html", {"form": form, **context}, status=status)


@never_cache
@GET_POST
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        if sessions.current(request) is not None:
            return redirect("accounts:account")
        return _sign_in_page(request, SignInForm())
    form = SignInForm(request.POST)
    if not form.is_valid():
        return _sign_in_page(request, form, status=400)
    email, client = form.cleaned_data["email"], _client(request)
    # Counted before anything else, and before any hash (accounts.throttle).
    decided = throttle.sign_in(request, email)
    if decided.verdict is throttle.Verdict.REFUSED:
        if decided.first:
            actions.record_refused_attempt(email, LoginResult.THROTTLED, client)
        return _too_many(request, decided.refused)
    if decided.verdict is throttle.Verdict.CAPTCHA:
        checked = SignInCaptchaForm(request.POST)
        if not checked.is_valid():
            if decided.first:
                actions.record_refused_attempt(email, LoginResult.CAPTCHA, client)
            if "captcha" in checked.errors and request.POST.get("captcha_0"):
                record_captcha_failure("account_sign_in")
            notice = _(
                "Many attempts were made to sign in to this address recently. To protect the account, type the "
                "characters in the picture as well."
            )
            return _sign_in_page(request, SignInCaptchaForm(initial={"email": email}), status=429, notice=notice)
    result = actions.sign_in(email, form.cleaned_data["password"], client)
    person = Person(pk=result.account.person_id) if result.account is not None else None
    record_security_event(request, EventKind.SIGN_IN, scope="account_sign_in", person=person)
    return _after_sign_in(request, form, result)


def _after_sign_in(request: HttpRequest, form: SignInForm, result: actions.SignedIn) -> HttpResponse:
    if result.outcome is actions.Outcome.WRONG:
        error = _("The e-mail address or the password is wrong. Check both and try again, or reset your password.")
        return _sign_in_page(request, SignInForm(initial={"email": form.cleaned_data["email"]}), 400, error=error)
    if result.outcome is actions.Outcome.NOT_VERIFIED:
        return render(request, "accounts/not_verified.html", status=403)
    if result.outcome is actions.Outcome.PENDING_GUARDIAN:
        return render(request, "accounts/pending_guardian.html", status=403)
    response = redirect("accounts:code" if result.outcome is actions.Outcome.NEEDS_CODE else "accounts:account")
    sessions.set_cookie(response, result.token)
    return response


@never_cache
@GET_POST
def code(request: HttpRequest) -> HttpResponse:
    """The second step when an authenticator is set: its 6-digit code."""
    pending = sessions.current(request, second_factor=True)
    if pending is None:
        return redirect("accounts:sign_in")
    if request.method != "POST":
        return render(request, "accounts/code.html", {"form": CodeForm()})
    form = CodeForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/code.html", {"form": form}, status=400)
    if (decided := throttle.code(request, str(pending.pk))).verdict is throttle.Verdict.REFUSED:
        return _too_many(request, decided.refused)
    token = actions.complete_second_factor(pending, form.cleaned_data["code"], _client(request))
    if token is None:
        form.add_error("code", _("This code is wrong or was used already. Type the code your app shows now."))
        return render(request, "accounts/code.html", {"form": form}, status=400)
    response = redirect("accounts:account")
    sessions.set_cookie(response, token)
    return response


@never_cache
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    session = sessions.current(request) or sessions.current(request, second_factor=True)
    if session is not None:
        actions.sign_out(session)
    response = redirect("accounts:sign_in")
    sessions.clear_cookie(response)
    return response


# --- the account page -------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD"])
@holder_required
def home(request: HttpRequest, session: AccountSession) -> HttpResponse:
    try:
        view = account_view(session.account)
    except ProcessingRefused:
        message = _("You have restricted the processing of your personal information, so it is not shown here.")
        return render(request, "accounts/message.html", {"title": _("Your account"), "message": message}, status=409)
    return render(request, "accounts/home.html", {"view": view})


@never_cache
@GET_POST
@holder_required
def change_password(request: HttpRequest, session: AccountSession) -> HttpResponse:
    account = session.account
    if request.method != "POST":
        return render(request, "accounts/password.html", {"form": ChangePasswordForm()})
    form = ChangePasswordForm(request.POST, email=account.email or "", with_mfa=account.has_totp)
    if not form.is_valid():
        context = {"form": form, "strength": _strength(request)}
        return render(request, "accounts/password.html", context, status=400)
    if (decided := throttle.code(request, f"password:{session.pk}")).verdict is throttle.Verdict.REFUSED:
        return _too_many(request, decided.refused)
    token = actions.change_password(session, form.cleaned_data["current"], form.cleaned_data["password"])
    if token is None:
        form.add_error("current", _("The current password is wrong."))
        return render(request, "accounts/password.html", {"form": form}, status=400)
    response = render(
        request,
        "accounts/message.html",
        {
            "title": _("Password changed"),
            "message": _("Your password is changed. Every other browser signed in to your account was signed out."),
            "home": True,
        },
    )
    sessions.set_cookie(response, token)
    return response


# --- reset ------------------------------------------------------------------------------


class ResetPageForm(EmailForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_captcha(self)


@never_cache
@GET_POST
@rate_limit("account_reset", rate_setting="PIWARDEN_SIGN_UP_RATE", refuse=_too_many)
def reset(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "accounts/reset.html", {"form": ResetPageForm()})
    form = ResetPageForm(request.POST)
    if not form.is_valid():
        if "captcha" in form.errors:
            record_captcha_failure("account_reset")
        return render(request, "accounts/reset.html", {"form": form}, status=400)
    if throttle.mail(request, form.cleaned_data["email"]) is None:
        actions.request_reset(form.cleaned_data["email"])
    # The same page whether the address has an account, and whether a mail was sent.
    return redirect("accounts:reset_sent")


@never_cache
@require_http_methods(["GET", "HEAD"])
def reset_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/reset_sent.html")


@never_cache
@GET_POST
def reset_new(request: HttpRequest) -> HttpResponse:
    token = (request.POST if request.method == "POST" else request.GET).get("token", "")[:300]
    account = account_to_reset(token)
    if account is None:
        message = _(
            "This link is not valid: it may have expired (after 1 hour) or been used already. Ask for a new one."
        )
        context = {"title": _("Link not valid"), "message": message, "reset": True}
        return render(request, "accounts/message.html", context, status=404)
    if request.method != "POST":
        return render(request, "accounts/reset_new.html", {"form": NewPasswordForm(), "token": token})
    form = NewPasswordForm(request.POST, email=account.email or "", with_mfa=account.has_totp)
    if not form.is_valid():
        context = {"form": form, "token": token, "strength": _strength(request)}
        return render(request, "accounts/reset_new.html", context, status=400)
    actions.reset_password(account, form.cleaned_data["password"])
    message = _("Your password is changed. Sign in with it now; every browser that was signed in was signed out.")
    return render(
        request, "accounts/message.html", {"title": _("Password changed"), "message": message, "sign_in": True}
    )


# --- authenticator (TOTP) ---------------------------------------------------------------


@never_cache
@GET_POST
@holder_required
def totp(request: HttpRequest, session: AccountSession) -> HttpResponse:
    """Set up an authenticator: a new secret shown (text and otpauth link), then one code to confirm."""
    account = session.account
    if request.method != "POST":
        actions.start_totp(account)
        form = CodeForm()
    else:
        form = CodeForm(request.POST)
        if form.is_valid():
            if (decided := throttle.code(request, f"totp:{session.pk}")).verdict is throttle.Verdict.REFUSED:
                return _too_many(request, decided.refused)
            if actions.confirm_totp(account, form.cleaned_data["code"]):
                return render(
                    request,
                    "accounts/message.html",
                    {
                        "title": _("Authenticator added"),
                        "message": _("From now on, signing in asks for the code your app shows."),
                        "home": True,
                    },
                )
            form.add_error("code", _("This code is wrong. Type the code your app shows now."))
    pending = pending_secret(account)
    if pending is None:
        return redirect("accounts:totp")
    context = {
        "form": form,
        "secret": secret_text(pending[1]),
        "link": config_url(pending[1], account.email or ""),
    }
    return render(request, "accounts/totp.html", context, status=400 if form.errors else 200)


@never_cache
@require_POST
@holder_required
def totp_remove(request: HttpRequest, session: AccountSession) -> HttpResponse:
    form = RemoveTotpForm(request.POST)
    error = ""
    if (decided := throttle.code(request, f"totp_remove:{session.pk}")).verdict is throttle.Verdict.REFUSED:
        return _too_many(request, decided.refused)  # counted before the password is hashed
    if not form.is_valid():
        error = _("Type your password to remove the authenticator.")
    elif len(passwords.normalised(form.cleaned_data["password"])) < passwords.MIN_LENGTH:
        error = _(
            "Your password is shorter than 15 characters: change it to a longer one before removing the authenticator."
        )
    elif not actions.remove_totp(session.account, form.cleaned_data["password"]):
        error = _("The password is wrong.")
    if error:
        return render(
            request, "accounts/message.html", {"title": _("Not removed"), "message": error, "home": True}, status=400
        )
    return redirect("accounts:account")


# --- cancellation -----------------------------------------------------------------------


@never_cache
@GET_POST
@holder_required
def cancel(request: HttpRequest, session: AccountSession) -> HttpResponse:
    with_code = session.account.has_totp
    if request.method != "POST":
        return render(request, "accounts/cancel.html", {"form": CancelForm(), "with_code": with_code})
    form = CancelForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/cancel.html", {"form": form, "with_code": with_code}, status=400)
    if (decided := throttle.code(request, f"cancel:{session.pk}")).verdict is throttle.Verdict.REFUSED:
        return _too_many(request, decided.refused)
    if not actions.cancel_account(session, form.cleaned_data["password"], form.cleaned_data["code"]):
        form.add_error("password", _("The password (or the authenticator code) is wrong. Nothing was deleted."))
        return render(request, "accounts/cancel.html", {"form": form, "with_code": with_code}, status=400)
    response = redirect("accounts:cancelled")
    sessions.clear_cookie(response)
    return response


@never_cache
@require_http_methods(["GET", "HEAD"])
def cancelled(request: HttpRequest) -> HttpResponse:
    context = {"retention_days": load_declaration().category(LOG_CATEGORY).retention_days}
    return render(request, "accounts/cancelled.html", context)
