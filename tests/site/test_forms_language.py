"""The consultation form speaks to people of every script, in good Chinese and English.

* Names in every script are accepted and stored NFC-normalised; markup and the other
  refusals stay refused.
* E-mail addresses that cannot be a company contact's mailbox are refused with a clear message.
* Countries and regions carry CLDR's names, PRC naming for Taiwan, Hong Kong and Macao, and
  the order a reader of the page's language expects.
* Every error a visitor can meet reads as we wrote it, in both languages (Django's own
  Chinese for several of them reads badly, so our catalogue replaces it).
"""

from __future__ import annotations

import unicodedata
from html.parser import HTMLParser
from http import HTTPStatus

import pytest

from piwarden.inquiries.models import Inquiry
from piwarden.policy.declaration import region_name
from tests.conftest import consultation_data
from tests.site.test_bad_input import assert_nothing_stored, read_form_page

pytestmark = pytest.mark.django_db

URL = {"zh-hans": "/consultation/", "en": "/en/consultation/"}


# --- names in every script ---------------------------------------------------------------

NAMES = [
    pytest.param("प्रिया शर्मा", id="devanagari"),
    pytest.param("สมศักดิ์", id="thai"),
    pytest.param("Jose\u0301 Garci\u0301a", id="decomposed-latin"),
    pytest.param("Nguye\u0302\u0303n Va\u0306n An", id="decomposed-vietnamese"),
    pytest.param("மு. கருணாநிதி", id="tamil"),
    pytest.param("محمد\u200cرضا", id="persian-zwnj"),
    pytest.param("김민준", id="hangul"),
    pytest.param("Ζωή Παπαδοπούλου", id="greek"),
    pytest.param("O’Brien-Smith", id="apostrophe-hyphen"),
    pytest.param("阿卜杜勒·克里木", id="chinese-middle-dot"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_a_name_in_any_script_is_accepted_and_stored_nfc(client, language, name):
    company = "टाटा कंसल्टेंसी सर्विसेज" if "्" in name else "Compan\u0303i\u0301a Ejemplo S.A."
    response = client.post(URL[language], consultation_data(name=name, company=company, position="Directo\u0301r"))
    assert response.status_code == HTTPStatus.FOUND, read_form_page(response)
    inquiry = Inquiry.objects.get()
    assert inquiry.name == unicodedata.normalize("NFC", name)
    assert inquiry.company == unicodedata.normalize("NFC", company)
    assert inquiry.position == "Directór"  # composed: one code point for ó


def test_the_length_limit_counts_characters_after_normalisation(client):
    """100 accented letters typed decomposed are 200 code points, and still a 100-character name."""
    response = client.post(URL["en"], consultation_data(name="e\u0301" * 100))
    assert response.status_code == HTTPStatus.FOUND, read_form_page(response)
    assert Inquiry.objects.get().name == "é" * 100


REFUSED_NAMES = [
    pytest.param("<b>Priya</b>", id="markup"),
    pytest.param('Priya" onmouseover="x', id="quote"),
    pytest.param("Priya; DROP", id="semicolon"),
    pytest.param("a=b", id="equals"),
    pytest.param("Priya--", id="sql-comment"),
    pytest.param("\u202eayirP", id="bidi-override"),
    pytest.param("Pri\u200bya", id="zero-width-space"),
    pytest.param("\u0301Priya", id="leading-combining-mark"),
    pytest.param("Priya\u200c", id="trailing-joiner"),
    pytest.param("Priya\x07", id="control"),
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_markup_and_invisible_characters_stay_refused(client, name):
    response = client.post(URL["en"], consultation_data(name=name))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, _alert = read_form_page(response)
    assert errors == {"name": "A name may contain letters, spaces, dots, hyphens and apostrophes only."}
    assert_nothing_stored()


# --- e-mail: a mailbox a company contact can have --------------------------------------

QUOTED = {
    "en": "An e-mail address cannot contain quotation marks here. "
    "Please give the address you use, such as name@example.com.",
    "zh-hans": "此处的电子邮件地址不能包含引号。请填写您常用的邮箱地址，例如 name@example.com。",
}
NOT_A_DOMAIN = {
    "en": "After the @ there must be a full domain name that receives e-mail, such as example.com.",
    "zh-hans": "@ 后面必须是能接收邮件的完整域名，例如 example.com。",
}
BAD_ADDRESSES = [
    pytest.param('"<script>alert(1)</script>"@example.com', QUOTED, id="quoted-markup"),
    pytest.param('"john doe"@example.com', QUOTED, id="quoted-space"),
    pytest.param("a@localhost", NOT_A_DOMAIN, id="localhost"),
    pytest.param("sales@intranet", NOT_A_DOMAIN, id="single-label"),
    pytest.param("a@[127.0.0.1]", NOT_A_DOMAIN, id="ip-literal"),
    pytest.param("a@printer.local", NOT_A_DOMAIN, id="mdns"),
    pytest.param("a@example.test", NOT_A_DOMAIN, id="reserved-test"),
    pytest.param("a@host.localhost", NOT_A_DOMAIN, id="reserved-localhost"),
    pytest.param("a@example.com.", NOT_A_DOMAIN, id="trailing-dot"),
]


@pytest.mark.parametrize(("address", "message"), BAD_ADDRESSES)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_an_address_that_is_no_company_mailbox_is_refused_clearly(client, language, address, message):
    response = client.post(URL[language], consultation_data(email=address))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    errors, _alert = read_form_page(response)
    assert errors == {"email": message[language]}
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert_nothing_stored()


@pytest.mark.parametrize("address", ["o'brien@example.ie", "li.na+consult@example.com.cn", "zhang@例子.中国"])
def test_ordinary_company_addresses_still_pass(client, address):
    assert client.post(URL["en"], consultation_data(email=address)).status_code == HTTPStatus.FOUND


# --- countries and regions ---------------------------------------------------------------


class _Options(HTMLParser):
    """(value, label) of every option of ``<select name="region">``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.options: list[list[str]] = []
        self._in_region = False
        self._in_option = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "select":
            self._in_region = attributes.get("name") == "region"
        elif tag == "option" and self._in_region:
            self.options.append([attributes.get("value") or "", ""])
            self._in_option = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._in_region = False
        if tag == "option":
            self._in_option = False

    def handle_data(self, data: str) -> None:
        if self._in_option:
            self.options[-1][1] += data


def regions(client, language: str) -> list[tuple[str, str]]:
    reader = _Options()
    reader.feed(client.get(URL[language]).content.decode())
    return [(value, label) for value, label in reader.options if value]


PRC_NAMES = {
    "zh-hans": {"TW": "中国台湾", "HK": "中国香港", "MO": "中国澳门", "CN": "中国"},
    "en": {"TW": "Taiwan, China", "HK": "Hong Kong SAR, China", "MO": "Macao SAR, China", "CN": "China"},
}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_taiwan_hong_kong_and_macao_follow_prc_naming_on_the_form_and_for_staff(client, language):
    names = dict(regions(client, language))
    for code, expected in PRC_NAMES[language].items():
        assert names[code] == expected
        assert region_name(code, language) == expected  # what the staff console shows
    assert len(names) == 249  # every ISO 3166-1 country and region
    assert regions(client, language)[0] == ("CN", PRC_NAMES[language]["CN"])  # the storage region first


def test_chinese_names_are_cldr_s_not_pycountry_s_misspellings(client):
    names = dict(regions(client, "zh-hans"))
    assert names["KH"] == "柬埔寨"  # pycountry's zh_CN catalogue says 柬埔塞
    assert "柬埔塞" not in names.values()
    assert names["CI"] == "科特迪瓦"
    assert names["KP"] == "朝鲜"


def test_chinese_regions_are_in_pinyin_order(client):
    labels = [label for _code, label in regions(client, "zh-hans")][1:]
    position = {label: i for i, label in enumerate(labels)}
    # a < ai < an (syllable by syllable, tone after the letters), whole-word readings: 秘鲁 is bì lǔ.
    for earlier, later in [
        ("阿富汗", "埃及"),
        ("埃及", "安哥拉"),
        ("巴西", "比利时"),
        ("比利时", "秘鲁"),
        ("秘鲁", "冰岛"),
        ("巴勒斯坦领土", "巴拿马"),
        ("巴拿马", "巴西"),
        ("德国", "俄罗斯"),
        ("新西兰", "匈牙利"),
        ("赞比亚", "乍得"),
        ("乍得", "智利"),
        ("智利", "中国台湾"),
    ]:
        assert position[earlier] < position[later], (earlier, later)


def test_english_regions_are_alphabetical_ignoring_accents(client):
    labels = [label for _code, label in regions(client, "en")][1:]
    assert labels[:3] == ["Afghanistan", "Åland Islands", "Albania"]
    bare = [
        "".join(c for c in unicodedata.normalize("NFKD", x) if not unicodedata.combining(c)).casefold() for x in labels
    ]
    assert bare == sorted(bare)
    assert labels.index("Côte d’Ivoire") < labels.index("Croatia")


# --- every error the visitor can meet, in our words --------------------------------------

OUR_WORDING = [
    # Each case: what is posted, the field it is about, the English and the Chinese wording.
    pytest.param({"name": ""}, "name", "This field is required.", "此项为必填项。", id="required"),
    pytest.param(
        {"name": "x" * 101},
        "name",
        "Ensure this value has at most 100 characters (it has 101).",
        "最多可填写 100 个字符（您填写了 101 个）。",
        id="too-long",
    ),
    pytest.param(
        {"name": "Pri\x00ya"}, "name", "Null characters are not allowed.", "填写的内容中不能包含空字符。", id="null"
    ),
    pytest.param(
        {"name": "<b>x</b>"},
        "name",
        "A name may contain letters, spaces, dots, hyphens and apostrophes only.",
        "姓名只能包含文字、空格、点、连字符和撇号，请删除其他字符。",
        id="name-characters",
    ),
    pytest.param(
        {"email": "not-an-address"}, "email", "Enter a valid email address.", "请输入有效的电子邮件地址。", id="email"
    ),
    pytest.param({"email": "a@localhost"}, "email", NOT_A_DOMAIN["en"], NOT_A_DOMAIN["zh-hans"], id="localhost"),
    pytest.param(
        {"region": "XX"},
        "region",
        "Select a valid choice. XX is not one of the available choices.",
        "请从列表中选择；“XX”不是可选项。",
        id="choice",
    ),
    pytest.param(
        {"phone": "12345"},
        "phone",
        "This is not a valid phone number. Numbers outside mainland China start with + and the country code.",
        "电话号码无效，请检查后重新填写。中国大陆以外的号码请以 + 和国家/地区代码开头。",
        id="phone",
    ),
    pytest.param(
        {"consent": None},
        "consent",
        "Please tick the box to agree, or we cannot process your request.",
        "请勾选同意，否则我们无法处理您的咨询请求。",
        id="consent",
    ),
]
BAD_DJANGO_CHINESE = (
    "确保该变量",
    "不允许是用空字符串",
    "输入一个有效的 Email 地址",
    "选择一个有效的选项",
    "这个字段是必填项",
)


@pytest.mark.parametrize(("posted", "field", "english", "chinese"), OUR_WORDING)
def test_every_form_error_reads_as_we_wrote_it_in_both_languages(client, posted, field, english, chinese):
    for language, expected in (("en", english), ("zh-hans", chinese)):
        response = client.post(URL[language], consultation_data(**posted))
        assert response.status_code == HTTPStatus.BAD_REQUEST
        errors, _alert = read_form_page(response)
        assert errors == {field: expected}, language
        body = response.content.decode()
        for bad in BAD_DJANGO_CHINESE:
            assert bad not in body
    assert_nothing_stored()
