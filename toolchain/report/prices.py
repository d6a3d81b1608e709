"""The dated price table: one YAML file per region in `infra/report/prices/`, every price with its source.

Prices are data, not code: a reviewer can check each figure against the page it names, and a
new region is a new file with the same keys. `load_prices()` refuses a table that lacks a key
the estimate needs, so a half-copied region fails loudly instead of pricing items at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PRICES_DIR = Path(__file__).resolve().parent / "prices"
DEFAULT_REGION = "ap-northeast-2"


@dataclass(frozen=True)
class Price:
    """One list price: USD per `unit`, the monthly always-free allowance and where it comes from."""

    key: str
    usd: float
    unit: str
    source: str
    confirmed: bool
    free: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class PriceTable:
    """Every price of one region, with the date the table was compiled."""

    region: str
    compiled: str
    currency: str
    prices: dict[str, Price]
    path: Path

    def __getitem__(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise KeyError(f"price table {self.path.name} has no price {key!r}") from None

    @property
    def unconfirmed(self) -> list[str]:
        """Keys of figures not confirmed against their source page."""
        return sorted(k for k, p in self.prices.items() if not p.confirmed)


def available_regions() -> list[str]:
    """Regions with a price table."""
    return sorted(p.stem for p in PRICES_DIR.glob("*.yaml"))


def _price(key: str, raw: Any, path: Path) -> Price:
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name}: price {key!r} must be a mapping with usd, unit and source")
    missing = [f for f in ("usd", "unit", "source", "confirmed") if f not in raw]
    if missing:
        raise ValueError(f"{path.name}: price {key!r} lacks {', '.join(missing)}")
    usd = raw["usd"]
    if not isinstance(usd, int | float) or usd < 0:
        raise ValueError(f"{path.name}: price {key!r} has usd={usd!r}; allowed: a number >= 0")
    source = str(raw["source"])
    if not source.startswith("https://"):
        raise ValueError(f"{path.name}: price {key!r} names no source page (got {source!r})")
    return Price(
        key=key,
        usd=float(usd),
        unit=str(raw["unit"]),
        source=source,
        confirmed=bool(raw["confirmed"]),
        free=float(raw.get("free", 0) or 0),
        note=str(raw.get("note", "") or ""),
    )


def load_prices(region: str = DEFAULT_REGION, required: tuple[str, ...] = ()) -> PriceTable:
    """The price table of `region`; raises naming the file and key when something is missing."""
    path = PRICES_DIR / f"{region}.yaml"
    if not path.exists():
        raise FileNotFoundError(
            f"no price table for region {region!r}; tables exist for: {', '.join(available_regions())}. "
            f"Add {path.relative_to(PRICES_DIR.parent.parent.parent)} with the same keys."
        )
    document = yaml.safe_load(path.read_text()) or {}
    raw_prices = document.get("prices") or {}
    prices = {str(k): _price(str(k), v, path) for k, v in raw_prices.items()}
    absent = [k for k in required if k not in prices]
    if absent:
        raise ValueError(f"{path.name}: missing prices {', '.join(absent)}")
    return PriceTable(
        region=str(document.get("region", region)),
        compiled=str(document.get("compiled", "unknown")),
        currency=str(document.get("currency", "USD")),
        prices=prices,
        path=path,
    )
