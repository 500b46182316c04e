"""Entity rows: customers, accounts, cards, terminals (PII from Faker, seeded).

Rows are tuples in the column order of the `*_COLUMNS` constants; times are epoch seconds
(floats), formatted by the writer. Identifiers that must be unique (IBAN, PAN) are derived
from the row's id, so they never collide and need no lookup.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from faker import Faker

from filler import distributions as d

CUSTOMER_COLUMNS = ("customer_id", "external_ref", "full_name", "email", "phone", "national_id",
                    "date_of_birth", "address", "city", "country", "kyc_notes", "status", "closed_at",
                    "created_at", "updated_at")
ACCOUNT_COLUMNS = ("account_id", "customer_id", "iban", "currency", "account_type", "status", "closed_at",
                   "created_at", "updated_at")
CARD_COLUMNS = ("card_id", "account_id", "pan", "pan_last4", "expires_on", "card_type", "status",
                "closed_at", "created_at", "updated_at")
TERMINAL_COLUMNS = ("terminal_id", "terminal_type", "merchant_name", "mcc", "city", "country", "currency",
                    "description", "status", "closed_at", "created_at", "updated_at")

LOCALES = {"DE": "de_DE", "FR": "fr_FR", "NL": "nl_NL", "ES": "es_ES", "IT": "it_IT", "AT": "de_AT",
           "GB": "en_GB", "CH": "de_CH", "US": "en_US", "PL": "pl_PL"}
BANK_CODE = "50010517"
CARD_BIN = "453201"
LONG_NOTES_SHARE = 0.05  # customers whose KYC notes are several kB (TOASTed in PostgreSQL)


def _utc_date(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()


def iban_for(account_id: int) -> str:
    """A German IBAN whose account number is the account id (valid mod-97 check digits)."""
    bban = f"{BANK_CODE}{account_id:010d}"
    # country DE = 13 14, check digits 00 moved to the end
    check = 98 - int(f"{bban}131400") % 97
    return f"DE{check:02d}{bban}"


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_check_digit(partial: str) -> str:
    """The digit that makes partial + digit pass the Luhn check."""
    digits = [ord(ch) - 48 for ch in reversed(partial)]
    total = sum(_DOUBLED[n] for n in digits[0::2]) + sum(digits[1::2])
    return str((10 - total % 10) % 10)


def pan_for(card_id: int) -> str:
    """A 16-digit Visa-like PAN with a valid Luhn digit, unique per card id (< 10**9)."""
    partial = f"{CARD_BIN}{card_id % 10**9:09d}"
    return partial + luhn_check_digit(partial)


EMAIL_DOMAINS = ("mail.test", "post.test", "web.test")
POOL_SIZE = 400  # Faker values drawn once per locale, then combined by the seeded stream


def _vary_phone(rng: random.Random, phone: str) -> str:
    """A pool phone number with its last four digits redrawn."""
    if len(phone) > 4 and phone[-4:].isdigit():
        return f"{phone[:-4]}{int(rng.random() * 10000):04d}"
    return phone


class _LocalePool:
    """Names, streets, cities, companies and phone formats of one locale (Faker is slow per call)."""

    def __init__(self, fake: Faker):
        for provider in fake.get_providers():
            # some locales (it_IT) build their city list from a set: order varies per process
            if isinstance(getattr(provider, "cities", None), list):
                provider.cities = sorted(provider.cities)
        self.first = [fake.first_name() for _ in range(POOL_SIZE)]
        self.last = [fake.last_name() for _ in range(POOL_SIZE)]
        self.streets = [fake.street_address().replace("\n", ", ") for _ in range(POOL_SIZE)]
        self.cities = [fake.city() for _ in range(POOL_SIZE // 2)]
        self.companies = [fake.company().replace("\n", " ") for _ in range(POOL_SIZE)]
        self.phones = [fake.phone_number() for _ in range(POOL_SIZE)]
        self.first_ascii = [_ascii(n) for n in self.first]
        self.last_ascii = [_ascii(n) for n in self.last]


def _ascii(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or "x"


class EntityFactory:
    """Builds entity rows from one seeded random stream and seeded Faker pools."""

    def __init__(self, rng: random.Random, seed: int):
        self.rng = rng
        self._pools: dict[str, _LocalePool] = {}
        self._seed = seed
        base = Faker("la")
        base.seed_instance(seed)
        self._sentences = [base.sentence(nb_words=14) for _ in range(300)]
        # long KYC notes (~8-16 kB: above the TOAST threshold even compressed), drawn once
        self._long_notes = [" ".join(base.sentence(nb_words=14) for _ in range(rnd))
                            for rnd in range(90, 180, 3)]

    def _pool(self, country: str) -> _LocalePool:
        pool = self._pools.get(country)
        if pool is None:
            fake = Faker(LOCALES[country])
            fake.seed_instance(self._seed * 31 + sorted(LOCALES).index(country))
            pool = self._pools[country] = _LocalePool(fake)
        return pool

    def _country(self) -> str:
        return self.rng.choices(d.COUNTRIES, d.COUNTRY_WEIGHTS)[0]

    def _notes(self) -> str | None:
        rng = self.rng
        r = rng.random()
        if r < LONG_NOTES_SHARE:
            return f"{rng.choice(self._long_notes)} Reviewed {rng.randrange(10**6):06d}."
        if r < 0.5:
            n = rng.randint(1, 3)
        else:
            return None
        return " ".join(rng.choice(self._sentences) for _ in range(n))

    def customer(self, customer_id: int, created_at: float) -> tuple:
        rng = self.rng
        country = self._country() if rng.random() < 0.3 else "DE"
        pool = self._pool(country)
        i, j = int(rng.random() * len(pool.first)), int(rng.random() * len(pool.last))
        first, last = pool.first[i], pool.last[j]
        email = (f"{pool.first_ascii[i]}.{pool.last_ascii[j]}{int(rng.random() * 1000)}@"
                 f"{EMAIL_DOMAINS[int(rng.random() * 3)]}")
        born = _utc_date(created_at) - dt.timedelta(days=rng.randint(18 * 365, 85 * 365))
        national_id = f"{country}{rng.randrange(10**10, 10**11)}"
        ref = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        phone = _vary_phone(rng, pool.phones[int(rng.random() * len(pool.phones))])
        return (customer_id, ref, f"{first} {last}", email, phone, national_id, born.isoformat(),
                rng.choice(pool.streets), rng.choice(pool.cities), country, self._notes(), "active", None,
                created_at, created_at)

    def account(self, account_id: int, customer_id: int, created_at: float) -> tuple:
        rng = self.rng
        kind = rng.choices(("checking", "savings", "credit"), (70, 18, 12))[0]
        currency = "EUR" if rng.random() < 0.95 else rng.choice(("USD", "GBP", "CHF"))
        return (account_id, customer_id, iban_for(account_id), currency, kind, "active", None,
                created_at, created_at)

    def card(self, card_id: int, account_id: int, created_at: float, status: str = "active") -> tuple:
        rng = self.rng
        pan = pan_for(card_id)
        issued = _utc_date(created_at)
        expires = dt.date(issued.year + rng.randint(3, 5), issued.month, 1)
        kind = "debit" if rng.random() < 0.75 else "credit"
        return (card_id, account_id, pan, pan[-4:], expires.isoformat(), kind, status, None,
                created_at, created_at)

    def terminal(self, terminal_id: int, terminal_type: str, created_at: float,
                 status: str = "active") -> tuple:
        """Returns (row, category index or -1 for ATMs)."""
        rng = self.rng
        country = "DE" if rng.random() < 0.8 else self._country()
        pool = self._pool(country)
        company = rng.choice(pool.companies)
        if terminal_type == "ATM":
            mcc, merchant, cat_index = d.ATM_MCC, f"{company} ATM", -1
        else:
            cats, weights = d.categories_for(terminal_type)
            cat = rng.choices(cats, weights)[0]
            mcc, merchant, cat_index = cat.mcc, company, d.CATEGORIES.index(cat)
        city = rng.choice(pool.cities) if terminal_type != "ONLINE" else "Internet"
        description = None
        if rng.random() < 0.2:
            description = " ".join(rng.choice(self._sentences) for _ in range(rng.randint(2, 40)))
        row = (terminal_id, terminal_type, merchant, mcc, city, country, d.CURRENCY_BY_COUNTRY[country],
               description, status, None, created_at, created_at)
        return row, cat_index
