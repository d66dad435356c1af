"""What staff ask a charge run for: the period of invoice dates and optional filters."""

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

#: A period longer than this is almost certainly a typo (e.g. the wrong year).
MAX_PERIOD_DAYS = 366


class PeriodError(ValueError):
    """The period or filters cannot be used; ``str()`` is a sentence for staff."""


#: The invoice dates a run's period may be about.
DATE_FIELDS = ("date_created", "date_till")


@dataclass(frozen=True)
class RunFilters:
    """Which unpaid invoices a run charges, besides their date."""

    customer_ids: Tuple[int, ...] = ()
    partner_id: Optional[int] = None
    min_total_cents: Optional[int] = None
    max_total_cents: Optional[int] = None
    #: A rerun charges exactly these invoices again.
    invoice_ids: Tuple[int, ...] = field(default=())
    #: The date the period is about: the invoice's date (staff runs) or its due date
    #: (autopay schedules relative to the due date).
    date_field: str = "date_created"
    #: Only customers in these Splynx statuses (autopay schedules; empty: any).
    customer_statuses: Tuple[str, ...] = ()

    def as_json(self):
        """The filters as stored with the run (only those set apart from the defaults)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items()
                if v not in (None, ()) and not (k == "date_field" and v == "date_created")}

    @classmethod
    def from_json(cls, data):
        data = dict(data or {})
        for key in ("customer_ids", "invoice_ids", "customer_statuses"):
            data[key] = tuple(data.get(key) or ())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def check_period(period_from, period_to):
    """Refuse a period that ends before it starts or spans more than a year."""
    if period_from > period_to:
        raise PeriodError("The period starts after it ends: the first date must be on or "
                          "before the last date.")
    if (period_to - period_from).days > MAX_PERIOD_DAYS:
        raise PeriodError("The period is longer than a year; choose a shorter one.")


def parse_date(text, label):
    """A ``YYYY-MM-DD`` date typed by staff (the CLI)."""
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        raise PeriodError(f"The {label} date must be a date such as 2024-06-30.") from None


def parse_customer_ids(text):
    """``"12, 15,40"`` → ``(12, 15, 40)``; raises PeriodError."""
    parts = [p for p in (text or "").replace(" ", "").split(",") if p]
    if not all(p.isascii() and p.isdigit() and 0 < int(p) < 2**31 for p in parts) \
            or len(parts) > 1000:
        raise PeriodError("Customer IDs must be numbers separated by commas, e.g. 12,15,40.")
    return tuple(sorted({int(p) for p in parts}))
