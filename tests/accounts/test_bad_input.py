"""Bad input on every account form, in both languages: the page says what is wrong, in the
visitor's language, and nothing changes (issue 9 §1 tests)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from piwarden.accounts.models import Account, AccountSession
from tests.accounts.helpers import PASSWORD, open_account, sign_up_data, signed_in

pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = {"zh-hans": "", "en": "/en"}


@pytest.fixture(autouse=True)
def _captcha_test_mode(settings):
    settings.CAPTCHA_TEST_MODE = True


SIGN_UP_CASES = [
    ({"email": "not-an-address"}, "有效的电子邮件", "valid email"),
    ({"email": '"<b>x</b>"@example.com'}, "引号", "quotation marks"),
    ({"password": "short"}, "至少 15 个字符", "at least 15 characters"),
    ({"password": "x" * 257}, "最多 256 个字符", "at most 256 characters"),
    ({"password": "manchesterunited"}, "常用密码", "commonly used passwords"),
    ({"password": "li.na@example.com"}, "不要用电子邮箱", "e-mail address as your password"),
    ({"date_of_birth": "17/05/1990"}, "年-月-日", "year-month-day"),
    ({"date_of_birth": "2999-01-01"}, "不能晚于今天", "cannot be in the future"),
    ({"date_of_birth": "2018-01-01"}, "父母或其他监护人的电子邮箱", "parent or guardian"),
    ({"date_of_birth": "2018-01-01", "guardian_email": "li.na@example.com"}, "本人的电子邮箱", "own e-mail"),
    ({"phone": "12345"}, "电话号码", "phone number"),
    ({"accept": ""}, "请确认您已阅读隐私政策", "confirm that you have read"),
    ({"captcha_1": "wrong"}, "验证码", "verification code"),
]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize(("change", "zh", "en"), SIGN_UP_CASES)
def test_sign_up_refuses_bad_input_and_stores_nothing(language, change, zh, en):
    response = Client().post(f"{PREFIX[language]}/account/sign-up/", sign_up_data(**change))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    text = response.content.decode()
    assert (zh if language == "zh-hans" else en) in text
    assert not Account.objects.exists()
    assert PASSWORD not in text  # a password is never shown back


def test_the_strength_of_a_refused_password_is_shown_without_javascript():
    text = Client().post("/en/account/sign-up/", sign_up_data(password="short")).content.decode()
    assert "Strength of the password you sent: Weak" in text
    zh = Client().post("/account/sign-up/", sign_up_data(accept="")).content.decode()
    assert "您所提交密码的强度：" in zh


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_sign_in_refuses_a_malformed_address(language):
    response = Client().post(f"{PREFIX[language]}/account/sign-in/", {"email": "x", "password": ""})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert ("此项为必填项" if language == "zh-hans" else "This field is required") in response.content.decode()
    assert not AccountSession.objects.exists()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_reset_and_its_new_password_refuse_bad_input(language):
    client = Client()
    response = client.post(
        f"{PREFIX[language]}/account/reset/", {"email": "nope", "captcha_0": "x", "captcha_1": "PASSED"}
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    bad_token = client.post(f"{PREFIX[language]}/account/reset/new/", {"token": "forged:token", "password": "x" * 20})
    assert bad_token.status_code == HTTPStatus.NOT_FOUND
    assert ("链接无效" if language == "zh-hans" else "Link not valid") in bad_token.content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_change_password_and_cancel_refuse_bad_input_and_change_nothing(language):
    client = Client()
    account = open_account(client, language=language)
    signed_in(client, language=language)
    prefix = PREFIX[language]
    wrong_current = client.post(f"{prefix}/account/password/", {"current": "not it at all", "password": "y" * 20})
    assert wrong_current.status_code == HTTPStatus.BAD_REQUEST
    assert ("当前密码错误" if language == "zh-hans" else "current password is wrong") in wrong_current.content.decode()
    short = client.post(f"{prefix}/account/password/", {"current": PASSWORD, "password": "short one"})
    assert short.status_code == HTTPStatus.BAD_REQUEST
    no_tick = client.post(f"{prefix}/account/cancel/", {"password": PASSWORD})
    assert no_tick.status_code == HTTPStatus.BAD_REQUEST
    assert ("请勾选此项" if language == "zh-hans" else "Tick the box") in no_tick.content.decode()
    wrong = client.post(f"{prefix}/account/cancel/", {"password": "not it at all", "confirm": "on"})
    assert ("未删除任何信息" if language == "zh-hans" else "Nothing was deleted") in wrong.content.decode()
    assert Account.objects.get(pk=account.pk).password == account.password


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_forged_verification_link_confirms_nothing(language):
    Client().post(f"{PREFIX[language]}/account/sign-up/", sign_up_data())
    response = Client().post(f"{PREFIX[language]}/account/verify/", {"token": "x" * 40})
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert Account.objects.get().email_verified_at is None
