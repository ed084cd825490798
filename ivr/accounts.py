"""The account backend the IVR checks PINs against and reads balances from.

`AccountBackend` is the seam a bank plugs its core system into. The demo backend reads
`accounts.yaml` in the configuration directory, which holds salted PBKDF2 hashes of the
PINs, never the PINs. Repeated wrong PINs lock an account for a while, across calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

from config.errors import ConfigError, ConfigIssue
from config.yamlload import FieldReader, LocatedMap, load_yaml_file

PBKDF2_ROUNDS = 20_000


@dataclass(frozen=True)
class Customer:
    customer_id: str
    vip: bool = False


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    currency: str


class AccountBackend(Protocol):
    async def lookup(self, account: str) -> str | None:
        """The customer reference for an account number the caller typed, or None."""
        ...

    async def verify(self, reference: str, pin: str) -> Customer | None:
        """The customer if `pin` is right for the account behind `reference`."""
        ...

    async def balance(self, customer_id: str) -> Balance | None: ...


def hash_pin(pin: str, salt: str, rounds: int = PBKDF2_ROUNDS) -> str:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), rounds).hex()


@dataclass(frozen=True)
class DemoAccount:
    account: str
    customer_id: str
    salt: str = field(repr=False)
    pin_hash: str = field(repr=False)
    balance: Balance
    vip: bool


class FileAccountBackend:
    """Demo accounts from a YAML file; PIN checks run off the event loop."""

    def __init__(self, accounts: dict[str, DemoAccount]) -> None:
        self._accounts = accounts
        self._by_customer = {a.customer_id: a for a in accounts.values()}

    @classmethod
    def load(cls, path: Path) -> FileAccountBackend:
        doc = load_yaml_file(path)
        issues: list[ConfigIssue] = []
        reader = FieldReader(str(path), issues)
        accounts: dict[str, DemoAccount] = {}
        for number, body in reader.mapping(doc, "accounts", "accounts").items():
            where = f"accounts.{number}"
            if not isinstance(body, LocatedMap):
                reader.error(doc, None, where, "must be a mapping")
                continue
            raw_amount = reader.string(body, "balance", where) or "0"
            try:
                amount = Decimal(raw_amount)
            except InvalidOperation:
                reader.error(body, "balance", where, f"bad amount {raw_amount!r}")
                amount = Decimal(0)
            accounts[str(number)] = DemoAccount(
                account=str(number),
                customer_id=reader.string(body, "customer_id", where) or "",
                salt=reader.string(body, "salt", where) or "",
                pin_hash=reader.string(body, "pin_hash", where) or "",
                balance=Balance(amount, reader.string(body, "currency", where) or "CNY"),
                vip=reader.boolean(body, "vip", where, default=False),
            )
        if issues:
            raise ConfigError(issues)
        return cls(accounts)

    async def lookup(self, account: str) -> str | None:
        known = self._accounts.get(account)
        return known.customer_id if known else None

    async def verify(self, reference: str, pin: str) -> Customer | None:
        known = self._by_customer.get(reference)
        # Hash even for unknown accounts so timing does not tell which numbers exist.
        salt = known.salt if known else "unknown-account"
        digest = await asyncio.to_thread(hash_pin, pin, salt)
        if known is None or not hmac.compare_digest(digest, known.pin_hash):
            return None
        return Customer(known.customer_id, known.vip)

    async def balance(self, customer_id: str) -> Balance | None:
        known = self._by_customer.get(customer_id)
        return known.balance if known else None
