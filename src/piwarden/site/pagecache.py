"""Pages rendered once per process, language and path, then served from the stored bytes.

The home, privacy and contact pages show the declaration and the texts, in the page's language,
with the path's own links (the language switcher, the current menu entry): nothing else.  So
:func:`rendered_once` renders such a view on its first request and answers later requests with the
same body.  The middleware still runs on every request and adds its headers as usual
(``Content-Language``, ``Vary``, CSP, HSTS …); only the view's body is kept, with a
gzip-compressed copy made once for the browsers that accept it.

The stored body is keyed on the language, the path, the declaration's digest (which covers its
texts), so a reloaded declaration renders again, and whether the page asks for a cookie choice
(one signed cookie and the ``Sec-GPC`` header, read cheaply: at most three bodies per page), and
the notice of a material policy change the page shows, if any (piwarden.policy.notice);
translations change only with a restart.  Nothing is stored:

* under ``DEBUG`` (templates change while the server runs);
* for a request with a query string (it shows in the language links, and an unbounded number of
  strings must not fill the memory) or another method than GET and HEAD;
* for any answer but a plain 200;
* when rendering touched something of the request's own: the CSRF token (which sets a cookie),
  the CSP nonce (a new one per response) or a cookie.  Such a view is simply rendered each time.

What the decorator cannot see is a template reading ``request.user`` or a header; a view it wraps
must not (tests/site/test_pagecache.py checks the wrapped pages for an anonymous visitor against a
signed-in staff member).
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.gzip import re_accepts_gzip
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language

from piwarden.cessation.state import page_key as cessation_key
from piwarden.consent.cookies import cache_key
from piwarden.policy.declaration import load_declaration
from piwarden.policy.notice import cache_key as notice_key

MAX_ENTRIES = 64  # pages x languages, with room; a full store is emptied, never grown

View = Callable[..., HttpResponse]


class Stored:
    """A page's body, plain and gzip-compressed (compressed once, here, instead of on every request).

    No BREACH padding is needed: a stored page holds no secret (a page that shows the CSRF token
    is never stored), and the same bytes go to everyone.
    """

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.gzipped = gzip.compress(body, compresslevel=9, mtime=0)

    def response(self, request: HttpRequest) -> HttpResponse:
        if len(self.gzipped) < len(self.body) and re_accepts_gzip.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
            response = HttpResponse(self.gzipped, content_type=self.content_type)
            response["Content-Encoding"] = "gzip"  # so GZipMiddleware leaves it as it is
        else:
            response = HttpResponse(self.body, content_type=self.content_type)
        patch_vary_headers(response, ("Accept-Encoding",))
        return response


_store: dict[tuple[str, ...], Stored] = {}


def rendered_once(view: View) -> View:
    """Serve ``view``'s body from the per-process store when it depends only on language and path."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.DEBUG or request.method not in {"GET", "HEAD"} or request.META.get("QUERY_STRING"):
            return view(request, *args, **kwargs)
        key = (
            view.__module__,
            view.__qualname__,
            get_language() or "",
            request.path,
            *_version(),
            *cache_key(request),
            notice_key(request),
        )
        stored = _store.get(key)
        if stored is None:
            # Unset while the view runs, so that a token asked for is seen even when the middleware
            # had already set the flag (a new cookie for a missing or malformed one); then put back.
            csrf_before = request.META.pop("CSRF_COOKIE_NEEDS_UPDATE", False)
            response = view(request, *args, **kwargs)
            csrf_used = bool(request.META.get("CSRF_COOKIE_NEEDS_UPDATE"))
            if csrf_before or csrf_used:
                request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
            if csrf_used or not _reusable(request, response):
                return response
            if len(_store) >= MAX_ENTRIES:
                _store.clear()
            stored = _store[key] = Stored(response.content, response["Content-Type"])
        return stored.response(request)

    return wrapper


def forget_pages() -> None:
    """Drop every stored page (tests that change settings the pages show)."""
    _store.clear()
    for page in _form_pages:
        page.forget()


def _version() -> tuple[str, ...]:
    """What the stored bodies were made from: the declaration in force (its digest covers its texts),
    and the site's cessation (the notice every page shows while one is announced).

    The translations need no key of their own: Django reads a process's catalogues once, so a
    recompiled catalogue reaches pages only through a restart, which empties this store too.
    """
    return (load_declaration().digest, *cessation_key())


def _reusable(request: HttpRequest, response: HttpResponse) -> bool:
    nonce = getattr(request, "_csp_nonce", None)
    return (
        response.status_code == 200  # noqa: PLR2004  # a plain success, nothing else
        and not response.streaming
        and not response.cookies
        and not bool(nonce)  # a LazyNonce is truthy once generated
    )


# --- pages with a few values of their own per request (a form page) ----------------------------

Values = dict[str, str]
_form_pages: list[FilledInPage] = []  # every form page, for forget_pages()
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_-]{16,}")  # long and random: never met by chance, and nothing to escape


class FilledInPage:
    """A form page rendered once per language and path, with blanks for the values each request makes.

    An unbound form page differs between two visitors only in a few random values: the CSRF token,
    the submission token, the CAPTCHA challenge's key.  The first request renders the page
    through the form and its templates as usual; ``read`` then names the values that render used
    (``{"csrf": …, "captcha": …}``), and the page is stored cut at every place they appear.  Later
    requests call ``fresh`` for new values of the same names (storing the new CAPTCHA challenge, say)
    and get the stored page with those values put in.

    Each value must be at least 16 characters of ``[A-Za-z0-9_-]`` (random, so it cannot also
    appear in the page by chance, and with nothing to escape).  ``read`` and ``fresh`` must name the
    same values; if they do not, or a value is missing from the page, the request is rendered in
    full and nothing is stored.  Not stored either: under DEBUG, with a query string, for any
    answer but 200, or when the page used the CSP nonce.
    """

    def __init__(
        self,
        template_name: str,
        *,
        context: Callable[[HttpRequest], dict[str, Any]],
        read: Callable[[dict[str, Any]], Values],
        fresh: Callable[[HttpRequest], Values],
    ) -> None:
        self.template_name = template_name
        self.context = context
        self.read = read
        self.fresh = fresh
        self._pages: dict[tuple[str, ...], tuple[str, ...]] = {}
        _form_pages.append(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        storable = not settings.DEBUG and request.method in {"GET", "HEAD"} and not request.META.get("QUERY_STRING")
        key = (get_language() or "", request.path, *_version(), *cache_key(request), notice_key(request))
        parts = self._pages.get(key) if storable else None
        if parts is not None:
            values = self.fresh(request)
            if set(values) == set(parts[1::2]) and all(_SAFE_VALUE.fullmatch(v) for v in values.values()):
                return HttpResponse("".join(values[p] if i % 2 else p for i, p in enumerate(parts)))
        context = self.context(request)
        response = render(request, self.template_name, context)
        if storable and response.status_code == 200 and not bool(getattr(request, "_csp_nonce", None)):  # noqa: PLR2004
            cut = _cut(response.content.decode(), self.read(context))
            if cut is not None:
                if len(self._pages) >= MAX_ENTRIES:
                    self._pages.clear()
                self._pages[key] = cut
        return response

    def forget(self) -> None:
        self._pages.clear()


def _cut(page: str, values: Values) -> tuple[str, ...] | None:
    """The page as text, name, text, name, … text, cut at every occurrence of every value."""
    if not values or not all(_SAFE_VALUE.fullmatch(v) for v in values.values()):
        return None
    if len(set(values.values())) != len(values):
        return None
    names = {value: name for name, value in values.items()}
    pieces = re.split("(" + "|".join(re.escape(v) for v in values.values()) + ")", page)
    parts = tuple(names[p] if i % 2 else p for i, p in enumerate(pieces))
    if set(parts[1::2]) != set(values):
        return None  # a value the page does not show: it cannot be filled in
    return parts
