"""filler.generators and filler.writer: identifiers, entity rows, COPY text."""

from __future__ import annotations

import random

from filler import distributions as d
from filler.generators import EntityFactory, iban_for, luhn_check_digit, pan_for
from filler.writer import NULL, TimeFormatter, entity_copy_text, txn_copy_text


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def test_pan_is_luhn_valid_and_unique_per_card() -> None:
    assert luhn_check_digit("7992739871") == "3"
    pans = [pan_for(i) for i in range(1, 5000)]
    assert all(len(p) == 16 and p.isdigit() and luhn_ok(p) for p in pans)
    assert len(set(pans)) == len(pans)


def test_iban_check_digits() -> None:
    for account_id in (1, 42, 987654321):
        iban = iban_for(account_id)
        rearranged = iban[4:] + iban[:4]
        digits = "".join(str(int(ch, 36)) for ch in rearranged)
        assert int(digits) % 97 == 1 and len(iban) == 22


def test_entities_are_deterministic_and_plausible() -> None:
    a = EntityFactory(random.Random(5), 5)
    b = EntityFactory(random.Random(5), 5)
    rows_a = [a.customer(i, 1.7e9) for i in range(300)]
    assert rows_a == [b.customer(i, 1.7e9) for i in range(300)]
    for row in rows_a:
        assert "@" in row[3] and row[9] in d.CURRENCY_BY_COUNTRY and row[11] == "active"
    assert any(row[10] and len(row[10]) > 8000 for row in rows_a + [a.customer(i, 1.7e9) for i in range(300, 900)])
    term, cat = a.terminal(1, "ATM", 1.7e9)
    assert term[3] == d.ATM_MCC and cat == -1
    term, cat = a.terminal(2, "ONLINE", 1.7e9)
    assert d.CATEGORIES[cat].terminal_type == "ONLINE" and term[4] == "Internet"


def test_time_formatter_and_copy_escaping() -> None:
    fmt = TimeFormatter()
    assert fmt(0.5) == "1970-01-01 00:00:00.500000+00"
    assert fmt(1767225599.25) == "2025-12-31 23:59:59.250000+00"
    assert fmt(None) == NULL
    text = entity_copy_text([(1, "a\tb\nc\\d", None, True, 1.0)], ("id", "name", "x", "flag", "created_at"))
    assert text == "1\ta\\tb\\nc\\\\d\t\\N\tt\t1970-01-01 00:00:01.000000+00\n"
    row = [7, 3, 4, "purchase", "approved", 12345, "EUR", True, "chip", None, 10.0, 11.0, None, None, 11.0]
    assert txn_copy_text([row]) == ("7\t3\t4\tpurchase\tapproved\t123.45\tEUR\tt\tchip\t\\N\t"
                                    "1970-01-01 00:00:10.000000+00\t1970-01-01 00:00:11.000000+00\t\\N\t\\N\t"
                                    "1970-01-01 00:00:11.000000+00\n")
    # a reversal (its own updated_at), then a row in the same second as the first: cached text
    reversed_ = [8, 3, 4, "purchase", "reversed", 50, "EUR", False, "ecommerce", None, 10.25, 11.5, None, 99.0, 99.0]
    declined = [9, 3, 4, "purchase", "declined", 7, "EUR", True, "chip", "do_not_honor", 10.5, None, 12.0, None, 12.0]
    assert txn_copy_text([row, reversed_, declined]).splitlines()[1:] == [
        "8\t3\t4\tpurchase\treversed\t0.50\tEUR\tf\tecommerce\t\\N\t1970-01-01 00:00:10.250000+00\t"
        "1970-01-01 00:00:11.500000+00\t\\N\t1970-01-01 00:01:39.000000+00\t1970-01-01 00:01:39.000000+00",
        "9\t3\t4\tpurchase\tdeclined\t0.07\tEUR\tt\tchip\tdo_not_honor\t1970-01-01 00:00:10.500000+00\t"
        "\\N\t1970-01-01 00:00:12.000000+00\t\\N\t1970-01-01 00:00:12.000000+00"]
