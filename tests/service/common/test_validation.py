"""Unit tests for the pure field rules in service.common.validation."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.common import validation as check
from service.errors import FieldViolation, InvalidArgumentError, Violations

# --------------------------------------------------------------------------- helpers


def violations_of(run: Callable[[Violations], object]) -> tuple[FieldViolation, ...]:
    """Run one check and return what it reported through raise_if_any()."""
    v = Violations()
    run(v)
    with pytest.raises(InvalidArgumentError) as exc:
        v.raise_if_any()
    return exc.value.violations


def assert_clean(run: Callable[[Violations], object]) -> None:
    v = Violations()
    run(v)
    v.raise_if_any()  # raises InvalidArgumentError if anything was reported
    assert not v


def single(run: Callable[[Violations], object]) -> FieldViolation:
    found = violations_of(run)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- email

# 64-char local part + "@" + 189-char domain = 254 characters, every part well-formed.
_LOCAL_64 = "a" * 64
_LABELS_128 = "b" * 63 + "." + "c" * 63 + "."
# Every label stays within 63 characters, so only the total length can be at fault.
EMAIL_254 = f"{_LOCAL_64}@{_LABELS_128}{'d' * 57}.com"
EMAIL_255 = f"{_LOCAL_64}@{_LABELS_128}{'d' * 58}.com"


def test_length_fixtures_are_what_they_claim() -> None:
    assert len(EMAIL_254) == 254
    assert len(EMAIL_255) == 255


@settings(max_examples=300)
@given(st.emails())
def test_check_email_accepts_every_generated_address(email: str) -> None:
    assert_clean(lambda v: check.check_email(v, "email", email))


@pytest.mark.parametrize(
    "email",
    [
        "jane.doe@example.com",
        "JANE.DOE@EXAMPLE.COM",
        "o'brien+tag@mail.example.co.uk",
        "x@a.io",
        "  padded@example.com  ",
        "user@xn--bcher-kva.example",
        EMAIL_254,
    ],
)
def test_check_email_accepts_valid_addresses(email: str) -> None:
    assert_clean(lambda v: check.check_email(v, "email", email))


@pytest.mark.parametrize(
    "email",
    [
        "bad",
        "a@",
        "@b.com",
        "a b@c.com",
        "a@b",
        "a@@b.com",
        "a..b@c.com",
        ".a@c.com",
        "a.@c.com",
        "a@-b.com",
        "a@b-.com",
        "a@b..com",
        "a@[192.168.0.1]",
        "j\u00e4ne@example.com",
        "a" * 65 + "@example.com",
        EMAIL_255,
    ],
)
def test_check_email_rejects_malformed_addresses(email: str) -> None:
    found = single(lambda v: check.check_email(v, "contact.email", email))
    assert found.field == "contact.email"
    assert found.reason == "INVALID_EMAIL"


@pytest.mark.parametrize("email", ["user@example.123", "user@192.168.0.1", "a@b.c.4"])
def test_check_email_rejects_numeric_top_level_domain(email: str) -> None:
    found = single(lambda v: check.check_email(v, "email", email))
    assert (found.field, found.reason) == ("email", "INVALID_EMAIL")
    assert "top-level domain" in found.description


@pytest.mark.parametrize("email", ["", "   ", "\t\n"])
def test_check_email_requires_a_value(email: str) -> None:
    found = single(lambda v: check.check_email(v, "email", email))
    assert (found.field, found.reason) == ("email", "REQUIRED")


def test_check_email_description_truncates_huge_input() -> None:
    found = single(lambda v: check.check_email(v, "email", "x" * 10_000))
    assert found.reason == "INVALID_EMAIL"
    assert len(found.description) < 200


# --------------------------------------------------------------------------- normalize / key


def test_normalize_email_lowercases_and_strips() -> None:
    assert check.normalize_email("  Jane.Doe@Example.COM\n") == "jane.doe@example.com"


def test_email_key_is_a_stable_sha256_hex_digest() -> None:
    # Pinned value: the key is persisted, so it must never change between releases.
    expected = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
    assert check.email_key("jane.doe@example.com") == expected
    assert check.email_key(" JANE.Doe@EXAMPLE.com ") == expected


@settings(max_examples=200)
@given(st.emails())
def test_email_key_ignores_case_and_surrounding_space(email: str) -> None:
    key = check.email_key(email)
    assert len(key) == 64
    assert set(key) <= set("0123456789abcdef")
    assert check.email_key(email.upper()) == key
    assert check.email_key(email.swapcase()) == key
    assert check.email_key(f"  {email}\t") == key


@settings(max_examples=200)
@given(st.emails(), st.emails())
def test_email_key_distinguishes_different_addresses(a: str, b: str) -> None:
    same = check.normalize_email(a) == check.normalize_email(b)
    assert (check.email_key(a) == check.email_key(b)) == same


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    "phone", ["+4915112345678", "+1234567", "+123456789012345", "+12025550123"]
)
def test_check_phone_accepts_e164(phone: str) -> None:
    assert_clean(lambda v: check.check_phone(v, "phone", phone))


def test_check_phone_treats_absent_as_valid() -> None:
    assert_clean(lambda v: check.check_phone(v, "phone", None))


def test_check_phone_refuses_an_empty_phone() -> None:
    found = single(lambda v: check.check_phone(v, "contact.phone", ""))
    assert (found.field, found.reason) == ("contact.phone", "INVALID_PHONE")


@pytest.mark.parametrize(
    "phone",
    [
        "4915112345678",  # no plus
        "+0123456789",  # country code cannot start with 0
        "+123456",  # too short (6 digits)
        "+1234567890123456",  # too long (16 digits)
        "+49 151 12345678",
        "+49-151-12345678",
        "+49151abc5678",
        "++4915112345678",
    ],
)
def test_check_phone_rejects_non_e164(phone: str) -> None:
    found = single(lambda v: check.check_phone(v, "contact.phone", phone))
    assert (found.field, found.reason) == ("contact.phone", "INVALID_PHONE")


@settings(max_examples=100)
@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_check_phone_accepts_generated_e164(phone: str) -> None:
    assert_clean(lambda v: check.check_phone(v, "phone", phone))


def test_check_phone_rejects_trailing_newline() -> None:
    # '$' alone would match before a trailing newline; the whole string must match.
    found = single(lambda v: check.check_phone(v, "phone", "+4915112345678\n"))
    assert found.reason == "INVALID_PHONE"


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize("language", ["de", "de-DE", "en-US", "zh-Hant-TW", "gsw", None, ""])
def test_check_language_accepts_bcp47_tags(language: str | None) -> None:
    assert_clean(lambda v: check.check_language(v, "language", language))


@pytest.mark.parametrize(
    "language", ["d", "deutsch", "de_DE", "de-", "-de", "de DE", "12", "de-" + "a" * 9, "de-" * 12]
)
def test_check_language_rejects_malformed_tags(language: str) -> None:
    found = single(lambda v: check.check_language(v, "language", language))
    assert (found.field, found.reason) == ("language", "INVALID_LANGUAGE")


def test_check_language_rejects_tags_longer_than_35_characters() -> None:
    tag = "en" + "-abcdefgh" * 4  # well-formed, 38 characters
    assert len(tag) > 35
    found = single(lambda v: check.check_language(v, "language", tag))
    assert found.reason == "INVALID_LANGUAGE"


def test_check_language_rejects_trailing_newline() -> None:
    # '$' alone would match before a trailing newline; the whole string must match.
    found = single(lambda v: check.check_language(v, "language", "de\n"))
    assert found.reason == "INVALID_LANGUAGE"


# --------------------------------------------------------------------------- timezone


@pytest.mark.parametrize(
    "tz", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", None, ""]
)
def test_check_timezone_accepts_iana_names(tz: str | None) -> None:
    assert_clean(lambda v: check.check_timezone(v, "time_zone", tz))


@settings(max_examples=100)
@given(st.sampled_from(sorted(zoneinfo.available_timezones())))
def test_check_timezone_accepts_every_available_zone(tz: str) -> None:
    assert_clean(lambda v: check.check_timezone(v, "time_zone", tz))


@pytest.mark.parametrize(
    "tz", ["Mars/Base", "Europe/Atlantis", "Europe/Berlin ", "Berlin", "GMT+25", "../etc/passwd"]
)
def test_check_timezone_rejects_unknown_names(tz: str) -> None:
    found = single(lambda v: check.check_timezone(v, "contact.time_zone", tz))
    assert (found.field, found.reason) == ("contact.time_zone", "INVALID_TIMEZONE")


# --------------------------------------------------------------------------- ip


@pytest.mark.parametrize(
    "ip", ["192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1", "::ffff:192.0.2.1"]
)
def test_check_ip_accepts_ipv4_and_ipv6(ip: str) -> None:
    assert_clean(lambda v: check.check_ip(v, "ip", ip))


@pytest.mark.parametrize("ip", [None, ""])
def test_check_ip_treats_absent_as_valid(ip: str | None) -> None:
    assert_clean(lambda v: check.check_ip(v, "ip", ip))


@settings(max_examples=100)
@given(st.ip_addresses())
def test_check_ip_accepts_generated_addresses(ip: Any) -> None:
    assert_clean(lambda v: check.check_ip(v, "ip", str(ip)))


@pytest.mark.parametrize(
    "ip", ["256.1.1.1", "1.2.3", "1.2.3.4.5", "localhost", "2001:db8:::1", "1.2.3.4/24", " 1.2.3.4"]
)
def test_check_ip_rejects_non_addresses(ip: str) -> None:
    found = single(lambda v: check.check_ip(v, "context.ip", ip))
    assert (found.field, found.reason) == ("context.ip", "INVALID_IP_ADDRESS")


# --------------------------------------------------------------------------- not in future

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


@pytest.mark.parametrize(
    "when",
    [None, NOW - timedelta(days=3650), NOW, NOW + SKEW - timedelta(seconds=1), NOW + SKEW],
    ids=["none", "long-ago", "now", "inside-skew", "at-skew"],
)
def test_check_not_future_accepts_times_within_skew(when: datetime | None) -> None:
    assert_clean(lambda v: check.check_not_future(v, "time", when, NOW, SKEW))


@pytest.mark.parametrize(
    "when",
    [NOW + SKEW + timedelta(microseconds=1), NOW + timedelta(hours=1), NOW + timedelta(days=400)],
    ids=["just-beyond", "hour", "year"],
)
def test_check_not_future_rejects_times_beyond_skew(when: datetime) -> None:
    found = single(lambda v: check.check_not_future(v, "events[2].time", when, NOW, SKEW))
    assert (found.field, found.reason) == ("events[2].time", "TIMESTAMP_IN_FUTURE")
    assert "300 s" in found.description


@settings(max_examples=200)
@given(
    offset=st.timedeltas(min_value=timedelta(days=-365), max_value=timedelta(days=365)),
    skew=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2)),
)
def test_check_not_future_flags_exactly_the_times_beyond_skew(
    offset: timedelta, skew: timedelta
) -> None:
    v = Violations()
    check.check_not_future(v, "time", NOW + offset, NOW, skew)
    assert bool(v) == (offset > skew)


# --------------------------------------------------------------------------- request id


def test_check_request_id_empty_is_allowed_and_returns_none() -> None:
    v = Violations()
    assert check.check_request_id(v, "request_id", "") is None
    assert not v


@settings(max_examples=100)
@given(st.uuids())
def test_check_request_id_parses_uuids(value: Any) -> None:
    v = Violations()
    assert check.check_request_id(v, "request_id", str(value)) == value
    assert check.check_request_id(v, "request_id", str(value).upper()) == value
    assert not v


@pytest.mark.parametrize(
    "request_id", ["not-a-uuid", "1234", "0b3c5e4a-6f0e-4c47-9d0e-8f5b1a2c3d4", "g" * 32, " "]
)
def test_check_request_id_rejects_non_uuids(request_id: str) -> None:
    v = Violations()
    assert check.check_request_id(v, "request_id", request_id) is None
    with pytest.raises(InvalidArgumentError) as exc:
        v.raise_if_any()
    [violation] = exc.value.violations
    assert (violation.field, violation.reason) == ("request_id", "INVALID_REQUEST_ID")


# --------------------------------------------------------------------------- money


def money(
    v: Violations, currency: str, units: int, nanos: int, *, allow_negative: bool = False
) -> Decimal | None:
    return check.money_amount(v, "price", currency, units, nanos, allow_negative=allow_negative)


@pytest.mark.parametrize(
    ("units", "nanos", "expected"),
    [
        (12, 340_000_000, Decimal("12.34")),
        (0, 0, Decimal("0")),
        (0, 1, Decimal("0.000000001")),
        (1, 999_999_999, Decimal("1.999999999")),
        (99_999_999_999, 999_999_999, Decimal("99999999999.999999999")),
    ],
)
def test_money_amount_returns_exact_decimal(units: int, nanos: int, expected: Decimal) -> None:
    v = Violations()
    amount = money(v, "EUR", units, nanos)
    assert not v
    assert isinstance(amount, Decimal)
    assert amount == expected


@pytest.mark.parametrize("units", [10**11, 2**63 - 1, -(10**11), -(2**63)])
def test_money_beyond_eleven_digits_is_refused(units: int) -> None:
    """NUMERIC(20, 9), the lifetime_value column, holds 11 integer digits."""
    found = violations_of(lambda v: money(v, "EUR", units, 0, allow_negative=True))
    assert [(f.field, f.reason) for f in found] == [("price.units", "OUT_OF_RANGE")]


@pytest.mark.parametrize(
    ("units", "nanos", "expected"),
    [(-3, -500_000_000, Decimal("-3.5")), (0, -1, Decimal("-0.000000001")), (-7, 0, Decimal(-7))],
)
def test_money_amount_allows_negative_only_when_asked(
    units: int, nanos: int, expected: Decimal
) -> None:
    v = Violations()
    assert money(v, "USD", units, nanos, allow_negative=True) == expected
    assert not v

    w = Violations()
    assert money(w, "USD", units, nanos) is None
    with pytest.raises(InvalidArgumentError) as exc:
        w.raise_if_any()
    [found] = exc.value.violations
    assert (found.field, found.reason) == ("price", "OUT_OF_RANGE")


@pytest.mark.parametrize("currency", ["eur", "Eur", "EU", "EURO", "", "E1R", "\u20acUR"])
def test_money_amount_rejects_non_iso_currency(currency: str) -> None:
    v = Violations()
    assert money(v, currency, 1, 0) is None
    with pytest.raises(InvalidArgumentError) as exc:
        v.raise_if_any()
    [found] = exc.value.violations
    assert (found.field, found.reason) == ("price.currency_code", "INVALID_CURRENCY")


def test_money_amount_rejects_currency_with_trailing_newline() -> None:
    # 'EUR\n' must not pass: the column is VARCHAR(3).
    found = single(lambda v: money(v, "EUR\n", 1, 0))
    assert (found.field, found.reason) == ("price.currency_code", "INVALID_CURRENCY")


@pytest.mark.parametrize(
    ("units", "nanos"),
    [
        (0, 1_000_000_000),
        (0, -1_000_000_000),
        (1, 10**12),
        (1, -1),  # signs disagree
        (-1, 1),
    ],
)
def test_money_amount_rejects_bad_nanos(units: int, nanos: int) -> None:
    v = Violations()
    assert money(v, "EUR", units, nanos, allow_negative=True) is None
    with pytest.raises(InvalidArgumentError) as exc:
        v.raise_if_any()
    [found] = exc.value.violations
    assert (found.field, found.reason) == ("price.nanos", "OUT_OF_RANGE")


def test_money_amount_reports_every_bad_part_at_once() -> None:
    found = violations_of(lambda v: money(v, "eur", 1, -5))
    assert {(f.field, f.reason) for f in found} == {
        ("price.currency_code", "INVALID_CURRENCY"),
        ("price.nanos", "OUT_OF_RANGE"),
    }


@settings(max_examples=300)
@given(
    units=st.integers(min_value=-check.MAX_MONEY_UNITS, max_value=check.MAX_MONEY_UNITS),
    nanos=st.integers(min_value=0, max_value=999_999_999),
    currency=st.from_regex(r"[A-Z]{3}", fullmatch=True),
)
def test_money_amount_is_exact_for_every_valid_triple(
    units: int, nanos: int, currency: str
) -> None:
    signed_nanos = -nanos if units < 0 else nanos
    v = Violations()
    amount = money(v, currency, units, signed_nanos, allow_negative=True)
    assert not v
    assert isinstance(amount, Decimal)
    assert amount * 1_000_000_000 == units * 1_000_000_000 + signed_nanos

    w = Violations()
    strict = money(w, currency, units, signed_nanos)
    if units < 0 or signed_nanos < 0:
        assert strict is None
        assert bool(w)
    else:
        assert strict == amount
        assert not w


# --------------------------------------------------------------------------- properties


KIB_100 = 100 * 1024  # Klaviyo: 100 KB per string (PROVIDERS.md)


def nested(levels: int, leaf: Any) -> dict[str, Any]:
    """`levels` nested objects (the outermost counts), the innermost holding `leaf`."""
    value: dict[str, Any] = {"leaf": leaf} if leaf is not None else {}
    for _ in range(levels - 1):
        value = {"child": value}
    return value


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(x) for x in value.values()), default=0)
    return 0


def test_nested_fixture_builds_the_requested_depth() -> None:
    assert depth(nested(10, "x")) == 10
    assert depth(nested(11, None)) == 11


def properties_problem(properties: dict[str, Any]) -> tuple[FieldViolation, ...]:
    return violations_of(lambda v: check.check_properties(v, "event.properties", properties))


def test_check_properties_accepts_the_exact_limits() -> None:
    properties: dict[str, Any] = {f"p{i}": i for i in range(400)}
    properties["p0"] = "x" * KIB_100
    properties["p1"] = list(range(4000))
    properties["p2"] = {"nested": ["a", {"b": None, "c": 1.5, "d": True}]}
    assert len(properties) == 400
    assert_clean(lambda v: check.check_properties(v, "event.properties", properties))


def test_check_properties_rejects_more_than_400_keys() -> None:
    properties = {f"p{i}": i for i in range(401)}
    [found] = properties_problem(properties)
    assert (found.field, found.reason) == ("event.properties", "TOO_MANY_PROPERTIES")


@pytest.mark.parametrize(
    "text",
    [
        "x" * (KIB_100 + 1),
        # 51,201 characters but 102,402 bytes: the limit is on bytes.
        "\u00e9" * (KIB_100 // 2 + 1),
    ],
    ids=["ascii", "multibyte"],
)
def test_check_properties_rejects_strings_over_100_kib(text: str) -> None:
    assert len(text.encode()) > 100 * 1024
    for properties in ({"s": text}, {"deep": {"list": [1, text]}}):
        [found] = properties_problem(properties)
        assert (found.field, found.reason) == ("event.properties", "INVALID_PROPERTIES")
        assert "string" in found.description


def test_check_properties_measures_multibyte_strings_in_bytes_not_characters() -> None:
    fits = "\u00e9" * (KIB_100 // 2)  # exactly 102,400 bytes
    assert_clean(lambda v: check.check_properties(v, "p", {"s": fits}))


def test_check_properties_rejects_arrays_over_4000_items() -> None:
    for properties in ({"a": [0] * 4001}, {"o": {"a": ["x"] * 4001}}, {"a": [[0] * 4001]}):
        [found] = properties_problem(properties)
        assert (found.field, found.reason) == ("event.properties", "INVALID_PROPERTIES")
        assert "array" in found.description


@pytest.mark.parametrize("levels", [1, 2, 5, 9])
def test_check_properties_accepts_moderate_nesting(levels: int) -> None:
    assert_clean(lambda v: check.check_properties(v, "p", nested(levels, "x")))


def test_check_properties_accepts_ten_levels_of_empty_objects() -> None:
    assert_clean(lambda v: check.check_properties(v, "p", nested(10, None)))


def test_check_properties_accepts_ten_levels_of_objects_holding_a_value() -> None:
    # Scalars add no nesting level: ten objects deep is within the limit.
    assert_clean(lambda v: check.check_properties(v, "p", nested(10, "x")))


def nested_lists(levels: int, leaf: Any) -> list[Any]:
    value: list[Any] = [leaf]
    for _ in range(levels - 1):
        value = [value]
    return value


def test_check_properties_counts_arrays_as_nesting_levels() -> None:
    # The properties object is level 1, so it can hold nine levels of arrays.
    assert_clean(lambda v: check.check_properties(v, "p", {"a": nested_lists(9, 1)}))
    [found] = properties_problem({"a": nested_lists(10, 1)})
    assert (found.field, found.reason) == ("event.properties", "INVALID_PROPERTIES")
    assert "nested" in found.description


@pytest.mark.parametrize("leaf", [None, "x", 1])
def test_check_properties_rejects_more_than_ten_levels(leaf: Any) -> None:
    [found] = properties_problem(nested(11, leaf))
    assert (found.field, found.reason) == ("event.properties", "INVALID_PROPERTIES")
    assert "nested" in found.description


@pytest.mark.parametrize(
    "properties", [{"s": "a\x00b"}, {"k\x00": 1}, {"o": {"l": ["ok", "no\x00"]}}]
)
def test_check_properties_rejects_nul_characters(properties: dict[str, Any]) -> None:
    [found] = properties_problem(properties)
    assert found.reason == "INVALID_PROPERTIES"
    assert "NUL" in found.description


def test_check_properties_reports_count_and_shape_together() -> None:
    properties: dict[str, Any] = {f"p{i}": i for i in range(401)}
    properties["p0"] = [0] * 4001
    found = properties_problem(properties)
    assert [f.reason for f in found] == ["TOO_MANY_PROPERTIES", "INVALID_PROPERTIES"]


_text = st.text(max_size=20).filter(lambda s: "\x00" not in s)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=5),
    st.dictionaries(_text, st.one_of(_scalars, st.lists(_scalars, max_size=3)), max_size=5),
)


@settings(max_examples=200)
@given(st.dictionaries(_text, _values, max_size=30))
def test_check_properties_accepts_small_well_formed_properties(properties: dict[str, Any]) -> None:
    assert_clean(lambda v: check.check_properties(v, "p", properties))


@pytest.mark.parametrize(
    "request_id",
    [
        "0x" + "a" * 30,
        "+" + "a" * 31,
        "{7b0e4a52-6f0e-4b7e-9d59-2a1c0f6f3c11}",
        "7b0e4a526f0e4b7e9d592a1c0f6f3c11",
    ],
)
def test_request_id_must_be_a_canonical_uuid(request_id: str) -> None:
    v = Violations()
    assert check.check_request_id(v, "request_id", request_id) is None
    assert v
