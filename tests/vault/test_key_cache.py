"""Unwrapped data keys never outlive the request that needed them (SEC-01).

The vault keeps unwrapped keys in a cache per thread; ``FailClosedMiddleware`` empties the
request's thread's after every request, and leaves other threads' requests their keys.
After a request that encrypted (a consultation) or decrypted (a staff
reveal), the cache is empty.  And when another process destroys 张伟's data key between two
requests (``destroy_data_key`` there writes the key row; our cache is not its to clear), the
next reveal here reads the destroyed key, not a copy left from the last request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from piwarden.inquiries.models import Inquiry
from piwarden.vault import crypto
from piwarden.vault.models import DataKey
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

ZHANG = {"name": "张伟", "email": "zhang.wei@example.com", "company": "示例科技有限公司"}
REVEAL = {"purpose": "respond_inquiry", "field_names": ["name", "company"], "reason": "Calling back about the quote"}


def cached_keys() -> int:
    return sum(len(cache) for cache in crypto._caches.values())  # the caches themselves: what the promise is about


@pytest.fixture
def inquiry(submit: Any) -> Inquiry:
    assert submit(**ZHANG).status_code == HTTPStatus.FOUND
    return Inquiry.objects.get()


@pytest.fixture
def staff(alice: User, inquiry: Inquiry, assign: Any) -> Client:
    assign(inquiry.reference, alice)  # sales see only the requests assigned to them
    client = Client()
    assert sign_in(client, alice).status_code == HTTPStatus.FOUND
    return client


@pytest.mark.duty("SEC-01")
def test_after_a_request_that_encrypted_the_cache_is_empty(submit: Any) -> None:
    assert cached_keys() == 0
    assert submit(**ZHANG).status_code == HTTPStatus.FOUND  # creates 张伟's data key and encrypts with it
    assert Inquiry.objects.filter(name__isnull=False).exists()
    assert cached_keys() == 0


@pytest.mark.duty("SEC-01")
def test_after_a_request_that_decrypted_the_cache_is_empty(inquiry: Inquiry, staff: Client) -> None:
    response = staff.post(f"/backoffice/inquiries/{inquiry.reference}/", REVEAL)
    assert response.status_code == HTTPStatus.OK
    assert ZHANG["name"] in response.content.decode()  # the request did unwrap the key and decrypt
    assert cached_keys() == 0


@pytest.mark.duty("SEC-01")
def test_a_key_destroyed_between_two_requests_is_not_used_from_cache(inquiry: Inquiry, staff: Client) -> None:
    url = f"/backoffice/inquiries/{inquiry.reference}/"
    assert ZHANG["name"] in staff.post(url, REVEAL).content.decode()

    # Another process destroys the data key: the row loses its wrapped key.
    assert DataKey.objects.filter(pk=inquiry.data_key_id).update(wrapped=b"", destroyed_at=timezone.now()) == 1

    body = staff.post(url, REVEAL).content.decode()
    assert ZHANG["name"] not in body
    assert ZHANG["company"] not in body


def in_another_thread(work: Callable[[], None]) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


@pytest.mark.duty("SEC-01")
def test_a_request_ending_in_one_thread_leaves_another_threads_keys(db: None) -> None:
    # A threaded server: one request made a new person's key (not saved until its INSERT) and is
    # about to seal their fields when another request ends and forgets its own keys.
    key = crypto.new_data_key()
    in_another_thread(crypto.forget_cached_keys)
    assert crypto.encrypt(key.id, "张伟", b"ad")  # no DataKey.DoesNotExist: the key is still this thread's
    crypto.forget_cached_keys()
    assert cached_keys() == 0


@pytest.mark.duty("SEC-01")
def test_a_destroyed_key_leaves_every_threads_cache(db: None) -> None:
    key = crypto.create_data_key()
    in_another_thread(lambda: crypto._remember(key.id, crypto.unwrap(key)))  # a worker thread holds it
    assert cached_keys() == 2  # this thread's (it made the key) and the worker's
    crypto.destroy_data_key(key)
    assert cached_keys() == 0
