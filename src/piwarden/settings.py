"""Django settings for piwarden.

Technical capability comes from the environment (see ``environment.py`` and the
operator table in the README's "Configuration" section); the privacy policy itself
(purposes, categories, retention, recipients) comes from the declaration in
``policy/`` and is loaded by ``piwarden.policy``.

The embedded defaults make one machine work with no configuration: SQLite in
WAL mode, a local Tink keyset, a file e-mail backend, all under
``PIWARDEN_DATA_DIR`` (``./var``).  DEBUG is off unless asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from piwarden.environment import (
    envbool,
    envchoice,
    envhours,
    envint,
    envlist,
    envrate,
    envsecret,
    envstr,
    persistent_secret,
    served_url,
)

# Every file a piwarden process creates is owner-only whatever the caller's umask: the data
# directory holds the database (and SQLite's -wal and -shm, which take the database file's mode),
# the keys, the sealed outbox and the secret key.  `piwarden serve` also tightens older files.
os.umask(0o077)

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(envstr("PIWARDEN_DATA_DIR", "var")).resolve()
POLICY_DIR = Path(envstr("PIWARDEN_POLICY_DIR", str(PACKAGE_DIR.parents[1] / "policy"))).resolve()

DEBUG = envbool("DEBUG", default=False)
SECRET_KEY = envsecret("SECRET_KEY") or persistent_secret(DATA_DIR / "secret_key")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "piwarden.site.views.csrf_failure"

INSTALLED_APPS = [
    # Before django.contrib.auth, whose createsuperuser it replaces with a refusal: every staff
    # account is made by createstaff (staff.actions.create_staff, audited).
    "piwarden.staff",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "django_otp",
    # Kept only so that migration staff.0002 can move its devices (plaintext secrets) to staff.Authenticator.
    "django_otp.plugins.otp_totp",
    "axes",
    "captcha",
    "django_tasks_db",
    "piwarden.policy",
    "piwarden.vault",
    "piwarden.audit",
    "piwarden.people",
    "piwarden.consent",
    "piwarden.processing",
    "piwarden.inquiries",
    "piwarden.children",
    "piwarden.rights",
    "piwarden.accounts",
    "piwarden.cessation",
    "piwarden.ratelimit",
    "piwarden.monitoring",
    "piwarden.incidents",
    "piwarden.security",
    "piwarden.retention",
    "piwarden.revisions",
    "piwarden.downloads",
    "piwarden.site",
    "piwarden.backoffice",
    "piwarden.api",
    "piwarden.demo",
]

MIDDLEWARE = [
    "piwarden.site.middleware.PermissionsPolicyMiddleware",  # outermost: static files and error pages too
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, compressed ahead of time (see STORAGES)
    # Pages and other text leave gzip-compressed when the browser accepts it (the privacy page:
    # 48 KB → 14 KB); Django's GZipMiddleware pads each response against BREACH.  Below WhiteNoise,
    # so static files never reach it.
    "piwarden.site.middleware.TextGZipMiddleware",
    "piwarden.vault.middleware.FailClosedMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "piwarden.site.middleware.UrlLengthMiddleware",  # after Locale: the 414 page is in the page's language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "piwarden.backoffice.middleware.StaffSessionMiddleware",  # after auth: ends a session signed in too long
    "piwarden.backoffice.middleware.StaffLanguageMiddleware",  # after auth, before axes renders its page
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Page views of a signed-in (piwarden.downloads.visitors: the visitor account session)
    # person who allowed analytics, kept in memory and written in bulk (piwarden.downloads.browsing).
    "piwarden.downloads.middleware.PageViewMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "piwarden.urls"
WSGI_APPLICATION = "piwarden.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates", POLICY_DIR / "texts"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "piwarden.site.context_processors.controller",
                "piwarden.backoffice.context_processors.staff_permissions",
                "piwarden.site.context_processors.cookie_banner",
                "piwarden.cessation.context_processors.notice",
                "piwarden.site.context_processors.policy_notice",
            ],
        },
    },
]

# Django's form renderer, with its one-line <input> templates written in Python (a form's inputs
# cost more through the template engine than the page around them).
FORM_RENDERER = "piwarden.site.rendering.FormRenderer"

# --- database -------------------------------------------------------------

_sqlite_path = DATA_DIR / "piwarden.sqlite3"
_database_url = envstr("DATABASE_URL", f"sqlite:///{_sqlite_path}")
try:
    _db = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the single writer; IMMEDIATE takes the write
    # lock at BEGIN so two writers queue instead of failing with "locked".
    # secure_delete overwrites what a DELETE or UPDATE frees, so that an erased person's wrapped
    # data key and ciphertexts do not linger in the file's free space (piwarden.people.ledger).
    _init = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA secure_delete=ON;"
    # The commit that takes the log past wal_autocheckpoint pages copies it into the database (two
    # fsyncs) before it returns, holding the site's writer queue (piwarden.sqlite.base): 4 000 pages
    # (16 MiB) instead of SQLite's 1 000 make that four times rarer, for less than twice the pages
    # copied each time (a page rewritten by many commits is copied once).  A log that grew past
    # journal_size_limit (a long reader held the checkpoint off) is cut back to it once checkpointed.
    # docs/performance.md, "The consultation POST: one turn for the counts".
    _init += " PRAGMA wal_autocheckpoint=4000; PRAGMA journal_size_limit=33554432;"
    # Tests only: cap the database at N pages, so that "database or disk is full" can be provoked
    # without filling a real disk (SQLite's own limit; the file is not changed).
    _max_pages = envint("PIWARDEN_SQLITE_MAX_PAGES", 0)
    if _max_pages:
        _init += f" PRAGMA max_page_count={_max_pages};"
    _db["OPTIONS"] = {"init_command": _init, "transaction_mode": "IMMEDIATE"}
    # Django's SQLite backend, its writers queued on a file lock (piwarden.sqlite.base).
    _db["ENGINE"] = "piwarden.sqlite"
    # Tests use a file (not :memory:) so that the canary test can read its bytes.
    _db["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's, with a flush that can empty the append-only audit log (piwarden.postgresql.base).
    _db["ENGINE"] = "piwarden.postgresql"
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    # Nothing shared lives in the cache: the rate limit has its own counter table
    # (piwarden.ratelimit.limiter) and django-axes keeps its lockouts in the database.
    # A per-process memory cache is all Django itself needs.
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# --- authentication (staff only for now) ----------------------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "backoffice:login"
AXES_FAILURE_LIMIT = envint("PIWARDEN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.5  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "backoffice/locked.html"  # in the staff member's language, not axes' English line
# AccessAttempt.post_data/get_data keep every submitted parameter unless it is named here (axes
# always masks "password").  Every field of the sign-in form is named, so that the lockout tables
# never hold an authenticator code or the CSRF token; the username has its own column.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "otp_token", "csrfmiddlewaretoken"]
OTP_TOTP_ISSUER = envstr("PIWARDEN_OTP_ISSUER", "piwarden")

# Staff sessions end after 30 minutes without a request (DESIGN: staff console), and 12 hours
# after sign-in however busy (issue 8 §2; piwarden.backoffice.middleware.StaffSessionMiddleware).
SESSION_COOKIE_AGE = envint("PIWARDEN_STAFF_IDLE_SECONDS", 30 * 60, minimum=60)
PIWARDEN_STAFF_MAX_SESSION_SECONDS = envint("PIWARDEN_STAFF_MAX_SESSION_SECONDS", 12 * 60 * 60, minimum=60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- security headers -----------------------------------------------------

_https = envbool("PIWARDEN_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = _https and envbool("PIWARDEN_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = envint("PIWARDEN_HSTS_SECONDS", 31536000 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
# Preload asks browsers to ship the HTTPS-only rule before the first visit; with includeSubDomains
# and a year's max-age it is what `check --deploy` expects of an HTTPS site (security.W021).
SECURE_HSTS_PRELOAD = _https and envbool("PIWARDEN_HSTS_PRELOAD", default=True)
# Forwarded headers are believed only behind a proxy the operator declares (gunicorn too: see
# piwarden.gunicorn_conf).  PIWARDEN_TRUSTED_PROXIES counts the proxies in front of the site, each
# appending the address it saw to X-Forwarded-For: the rate limit counts the address the outermost
# one appended (piwarden.ratelimit.limiter.client_address), never what the client wrote there itself.
PIWARDEN_BEHIND_PROXY = envbool("PIWARDEN_BEHIND_PROXY", default=False)
PIWARDEN_TRUSTED_PROXIES = envint("PIWARDEN_TRUSTED_PROXIES", 1, minimum=1) if PIWARDEN_BEHIND_PROXY else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PIWARDEN_BEHIND_PROXY else None
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# --- i18n: Chinese first, English second ----------------------------------

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True
# Never set: the address carries the language (/ or /en/) and no view sets this cookie, so the
# declaration lists none (policy/declaration.toml [[cookies]]).  Named so a stray one is ours.
LANGUAGE_COOKIE_NAME = "piwarden_language"
LANGUAGE_COOKIE_SECURE = _https
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"

# --- static files ---------------------------------------------------------

# `collectstatic` (run by `piwarden serve`, `make bench` and the test session) copies the files to
# STATIC_ROOT under names carrying their content's hash (site.3f2a….css), each with a .gz and a
# .br beside it.  WhiteNoise sends the compressed copy the browser accepts, and a hashed name
# with a year's Cache-Control (immutable): a changed file gets a new name, so no cache serves an
# old one.  Under DEBUG the files are served from the apps as they are, without the hash.
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- e-mail ---------------------------------------------------------------

PIWARDEN_OUTBOX_DIR = DATA_DIR / "outbox"
# The archives that answer access and copy requests (piwarden.rights.archive), sealed.
PIWARDEN_EXPORTS_DIR = DATA_DIR / "exports"
# The downloadable resources staff publish (piwarden.downloads): files under random names, served
# only through the download view (never by the static server), at most this many bytes each.
PIWARDEN_DOWNLOADS_DIR = DATA_DIR / "downloads"
PIWARDEN_DOWNLOAD_MAX_BYTES = envint("PIWARDEN_DOWNLOAD_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
_mailer = envchoice("PIWARDEN_EMAIL", "file", ("file", "smtp"))
if _mailer == "file":
    MAILERS = {
        "default": {
            # Sealed files: outgoing mail carries addresses, and nothing personal is kept in plaintext.
            "BACKEND": "piwarden.vault.outbox.SealedFileBackend",
            "OPTIONS": {"file_path": str(PIWARDEN_OUTBOX_DIR)},
        }
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": envstr("EMAIL_HOST", "127.0.0.1"),
                "port": envint("EMAIL_PORT", 25, minimum=1),
                "username": envstr("EMAIL_HOST_USER", ""),
                "password": envsecret("EMAIL_HOST_PASSWORD") or "",
                "use_tls": envbool("EMAIL_USE_TLS", default=False),
                "timeout": 30,
            },
        }
    }
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "noreply@example.com")
PIWARDEN_SALES_EMAIL = envstr("PIWARDEN_SALES_EMAIL", "sales@example.com")
# Rights requests: reminders of unassigned requests (working day 10) and every escalation (overdue).
PIWARDEN_PRIVACY_OFFICER_EMAIL = envstr("PIWARDEN_PRIVACY_OFFICER_EMAIL", "privacy@example.com")

# --- piwarden -------------------------------------------------------------

# Access reviews (policy §五.3): a campaign every so many months; access a reviewer has not
# confirmed so many days after the opening is suspended.
PIWARDEN_ACCESS_REVIEW_MONTHS = envint("PIWARDEN_ACCESS_REVIEW_MONTHS", 3, minimum=1)
PIWARDEN_ACCESS_REVIEW_DAYS = envint("PIWARDEN_ACCESS_REVIEW_DAYS", 14, minimum=1)
# Training (policy §五.5): a role that reveals personal data needs an attestation this recent;
# its holder is e-mailed so many days before it expires, and again when it has.
PIWARDEN_TRAINING_MONTHS = envint("PIWARDEN_TRAINING_MONTHS", 12, minimum=1)
PIWARDEN_TRAINING_NOTICE_DAYS = envint("PIWARDEN_TRAINING_NOTICE_DAYS", 30, minimum=1)

PIWARDEN_KEYS = envstr("PIWARDEN_KEYS", f"file:{DATA_DIR / 'keys'}")
# The erasure ledger (piwarden.people.ledger): keep it on storage apart from the database's backups.
PIWARDEN_ERASURE_LEDGER = Path(envstr("PIWARDEN_ERASURE_LEDGER", str(DATA_DIR / "erasures.ledger"))).resolve()
# Signed audit checkpoints, one JSON line each (piwarden.audit.chain.export_checkpoint): put it
# where the database's users cannot rewrite it (another volume, `chattr +a`, a third party's copy).
PIWARDEN_AUDIT_CHECKPOINTS = Path(
    envstr("PIWARDEN_AUDIT_CHECKPOINTS", str(DATA_DIR / "audit-checkpoints.jsonl"))
).resolve()
# The last test run's results (`make test` writes them: --duty-json), read by `piwarden policy
# trace` and the privacy officer's promises page.
PIWARDEN_DUTY_REPORT = Path(
    envstr("PIWARDEN_DUTY_REPORT", str(PACKAGE_DIR.parents[1] / "var" / "duty-report.json"))
).resolve()
PIWARDEN_CAPTCHA = envchoice("PIWARDEN_CAPTCHA", "on", ("on", "off"))
PIWARDEN_CONSULTATION_RATE = envrate("PIWARDEN_CONSULTATION_RATE", "5/m")  # per client address
# Cookie choices (the banner and /cookies/), per client address: each one is a row in the ledger.
PIWARDEN_COOKIE_CHOICE_RATE = envrate("PIWARDEN_COOKIE_CHOICE_RATE", "20/m")
# The rights portal: forms that send a one-time code, and codes typed back, per client address;
# codes e-mailed to one address, whoever asks (rights-intake).
PIWARDEN_RIGHTS_RATE = envrate("PIWARDEN_RIGHTS_RATE", "5/m")
PIWARDEN_RIGHTS_MAIL_RATE = envrate("PIWARDEN_RIGHTS_MAIL_RATE", "5/h")
# The JSON API has no CAPTCHA: besides the portal's limits, every POST to it counts here, per
# client address (rights-api).
PIWARDEN_API_RATE = envrate("PIWARDEN_API_RATE", "30/h")
# Visitor accounts (piwarden.accounts.throttle): sign-in attempts per client address, per (address
# typed, client) and per address typed over every client (beyond it the CAPTCHA is asked, never a
# block); sign-up and reset posts per client; account e-mails per client and per address.
PIWARDEN_SIGN_IN_RATE = envrate("PIWARDEN_SIGN_IN_RATE", "30/h")
PIWARDEN_SIGN_IN_PAIR_RATE = envrate("PIWARDEN_SIGN_IN_PAIR_RATE", "10/h")
PIWARDEN_SIGN_IN_ACCOUNT_RATE = envrate("PIWARDEN_SIGN_IN_ACCOUNT_RATE", "10/h")
PIWARDEN_SIGN_UP_RATE = envrate("PIWARDEN_SIGN_UP_RATE", "10/h")
PIWARDEN_ACCOUNT_MAIL_RATE = envrate("PIWARDEN_ACCOUNT_MAIL_RATE", "5/h")
# The risk rules of the public forms (piwarden.security.risk), per client address and UTC day:
# past the first, a harder CAPTCHA; past the second, refused until the day ends (a reference to cite
# for human review).  Wrong CAPTCHA answers past the rate block the client for the rest of the day.
PIWARDEN_RISK_HARDER_CAPTCHA = envint("PIWARDEN_RISK_HARDER_CAPTCHA", 10, minimum=1)
PIWARDEN_RISK_BLOCK = envint("PIWARDEN_RISK_BLOCK", 30, minimum=1)
PIWARDEN_RISK_CAPTCHA_FAILURES = envrate("PIWARDEN_RISK_CAPTCHA_FAILURES", "10/h")
# Monitoring (piwarden.monitoring.rules): more than N events within M minutes raise an alert to
# the security role; reveals outside PRC working hours (on a working day of the PRC calendar) too.
PIWARDEN_ALERT_REVEALS = envint("PIWARDEN_ALERT_REVEALS", 30, minimum=1)
PIWARDEN_ALERT_REVEALS_MINUTES = envint("PIWARDEN_ALERT_REVEALS_MINUTES", 10, minimum=1)
PIWARDEN_ALERT_WORKING_HOURS = envhours("PIWARDEN_ALERT_WORKING_HOURS", "09:00-18:00")
PIWARDEN_ALERT_SIGN_IN_FAILURES = envint("PIWARDEN_ALERT_SIGN_IN_FAILURES", 5, minimum=1)
PIWARDEN_ALERT_SIGN_IN_FAILURES_ALL = envint("PIWARDEN_ALERT_SIGN_IN_FAILURES_ALL", 20, minimum=1)
PIWARDEN_ALERT_SIGN_IN_MINUTES = envint("PIWARDEN_ALERT_SIGN_IN_MINUTES", 15, minimum=1)
PIWARDEN_ALERT_REFUSALS = envint("PIWARDEN_ALERT_REFUSALS", 20, minimum=1)
PIWARDEN_ALERT_REFUSALS_MINUTES = envint("PIWARDEN_ALERT_REFUSALS_MINUTES", 10, minimum=1)
# The retention sweep refuses to delete when the clock reads more than this many hours after the
# last reading it trusted (a wrong NTP answer must not delete early): piwarden.retention.sweep.
PIWARDEN_RETENTION_CLOCK_SKEW = envint("PIWARDEN_RETENTION_CLOCK_SKEW", 48, minimum=1)
PIWARDEN_ALERT_EVERY = envint("PIWARDEN_ALERT_EVERY", 300, minimum=10)  # seconds between runs under `serve`
# Links in e-mails.  `piwarden serve` sets it for its children from the address it serves at.
PIWARDEN_SITE_URL = envstr(
    "PIWARDEN_SITE_URL", served_url(envstr("HOST", "127.0.0.1"), envint("PORT", 8000, minimum=1))
)

CAPTCHA_TEST_MODE = envbool("PIWARDEN_CAPTCHA_TEST_MODE", default=False)
CAPTCHA_LENGTH = 5
CAPTCHA_TIMEOUT = 10  # minutes
CAPTCHA_IMAGE_SIZE = (150, 50)
CAPTCHA_FONT_SIZE = 34
# The picture is drawn by piwarden.site.captcha.picture (size, font size, colours and letter
# rotation from these settings; its own noise), not by the library's view; no 2x picture.
CAPTCHA_2X_IMAGE = False

# `make bench` only: PIWARDEN_BENCH=on adds the bare comparison view (bench/bench_baseline, with
# bench/ on sys.path) at /bench/baseline/.  Off by default; never on in production.
PIWARDEN_BENCH = envbool("PIWARDEN_BENCH", default=False)
if PIWARDEN_BENCH:
    INSTALLED_APPS.append("bench_baseline")
# `piwarden demo` (synthetic people, for a demo or benchmark database) refuses to run without it.
PIWARDEN_DEMO = envbool("PIWARDEN_DEMO", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.security.DisallowedHost": {"level": "ERROR"}},
}
