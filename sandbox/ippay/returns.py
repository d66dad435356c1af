"""ACH returns (issue 12): an accepted CHECK that the customer's bank sends back days later.

IPpay accepts a CHECK at once ("CHECK ACCEPTED", §3) but the debit is not final:
the receiving bank may return it with a NACHA reason (R01 insufficient funds,
R02 account closed ...) within days. IPpay's transaction API has no message for
this; merchants learn of returns from IPpay's reporting. Neither the report's
format nor its timing is public, so both are choices of this simulator [I]:

* a return is *scheduled* for an accepted CHECK, either by the account (the
  test accounts of the switch ``ach_returns``, :func:`listed_return`), by the
  amount trigger (a CHECK of exactly $9NN.00 is returned RNN, switch
  ``ach_return_trigger``) or through the control plane (``POST /_sim/ach/returns``);
* it is *produced* once the simulated date (``/_sim/clock``) reaches the
  CHECK's date plus ``after_days`` (switch ``ach_return_days``, default 2):
  then the CHECK's ledger status becomes ``returned`` and the return shows in
  ``GET /_sim/ach/returns`` and in the CSV report ``GET /_sim/ach/returns.csv``.

The CSV report (UTF-8, no BOM, comma-separated, CRLF line ends, one header row):

``return_date, terminal_id, transaction_id, ip_trans_id, check_date, return_code,
return_reason, amount_cents (or amount), account_last4, account_type, sec_code,
account_holder``

Dates are ``YYYY-MM-DD``. ``amount_cents`` is an integer; with
``ach_returns_amount = "dollars"`` the column is ``amount`` with two decimals
("12.50"). ``?since=YYYY-MM-DD`` keeps returns whose return_date is on or after
that day; ``?terminal_id=`` keeps one terminal's.
"""

import csv
import datetime
import io
from dataclasses import dataclass

#: NACHA return reasons the simulator can produce.
REASONS = {
    "R01": "Insufficient Funds",
    "R02": "Account Closed",
    "R03": "No Account/Unable to Locate Account",
    "R04": "Invalid Account Number Structure",
    "R05": "Unauthorized Debit to Consumer Account Using Corporate SEC Code",
    "R06": "Returned per ODFI's Request",
    "R07": "Authorization Revoked by Customer",
    "R08": "Payment Stopped",
    "R09": "Uncollected Funds",
    "R10": "Customer Advises Originator is Not Known to Receiver and/or Not Authorized",
    "R11": "Customer Advises Entry Not in Accordance with the Terms of the Authorization",
    "R12": "Account Sold to Another DFI",
    "R14": "Representative Payee Deceased",
    "R15": "Beneficiary or Account Holder Deceased",
    "R16": "Account Frozen/Entry Returned per OFAC Instruction",
    "R20": "Non-Transaction Account",
    "R24": "Duplicate Entry",
    "R29": "Corporate Customer Advises Not Authorized",
}

HEADER = ("return_date", "terminal_id", "transaction_id", "ip_trans_id", "check_date", "return_code",
          "return_reason", "amount_cents", "account_last4", "account_type", "sec_code", "account_holder")


class ReturnError(ValueError):
    """A return the simulator cannot schedule."""


@dataclass
class AchReturn:
    """One scheduled (``produced`` False) or produced return of a CHECK."""

    terminal_id: str
    transaction_id: str
    code: str
    check_date: str
    due_date: str
    amount: int
    ip_trans_id: str = None
    last4: str = None
    account_type: str = None
    sec_code: str = None
    holder: str = None
    #: "control" (POST /_sim/ach/returns), "amount" (the trigger) or "account" (ach_returns)
    origin: str = "control"
    produced: bool = False

    def to_json(self):
        """The view of ``GET /_sim/ach/returns``."""
        return {"terminal_id": self.terminal_id, "transaction_id": self.transaction_id, "code": self.code,
                "reason": REASONS[self.code], "check_date": self.check_date, "due_date": self.due_date,
                "amount": self.amount, "origin": self.origin, "produced": self.produced}


def triggered_code(amount):
    """The return code the amount trigger gives a CHECK of ``amount`` cents ($9NN.00 -> RNN), or None."""
    dollars, cents = divmod(amount, 100)
    code = f"R{dollars - 900:02d}"
    return code if cents == 0 and 900 < dollars < 1000 and code in REASONS else None


def listed_return(listed, last4, account_number=None, token=None):
    """``(code, after_days or None)`` when the CHECK's account is one of the test accounts
    of the switch ``ach_returns``, else None. A key of four digits matches the last four
    digits; a longer key the whole account number of a CHECK that carries it, or a token of
    that account (tokens keep the number's length and last four digits, rules.ach_token:
    the simulator keeps no account number to compare)."""
    for key, spec in (listed or {}).items():
        if len(key) == 4:
            hit = key == last4
        elif account_number:
            hit = key == account_number
        else:
            hit = bool(token) and len(token) == len(key) and token[-4:] == key[-4:]
        if hit:
            return spec["code"], spec.get("after_days")
    return None


def schedule(entry, code, after_days, today, origin="control"):
    """An AchReturn of the CHECK ``entry``, due ``after_days`` after the CHECK's date."""
    if code not in REASONS:
        raise ReturnError(f"code must be one of {', '.join(REASONS)}")
    if isinstance(after_days, bool) or not isinstance(after_days, int) or after_days < 0:
        raise ReturnError("after_days must be a non-negative integer")
    check_date = datetime.date.fromisoformat(entry.date) if entry.date else today
    ach = entry.ach or {}
    return AchReturn(terminal_id=entry.terminal_id, transaction_id=entry.transaction_id, code=code,
                     check_date=check_date.isoformat(),
                     due_date=(check_date + datetime.timedelta(days=after_days)).isoformat(),
                     amount=entry.amount, ip_trans_id=entry.ip_trans_id, last4=entry.last4,
                     account_type=ach.get("type"), sec_code=ach.get("sec"), holder=ach.get("holder"),
                     origin=origin)


def report_csv(returns, amount_unit="cents"):
    """The CSV report of produced ``returns`` (see the module docstring for its format)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = list(HEADER)
    if amount_unit == "dollars":
        header[header.index("amount_cents")] = "amount"
    writer.writerow(header)
    for r in returns:
        amount = f"{r.amount // 100}.{r.amount % 100:02d}" if amount_unit == "dollars" else str(r.amount)
        writer.writerow([r.due_date, r.terminal_id, r.transaction_id, r.ip_trans_id or "", r.check_date, r.code,
                         REASONS[r.code], amount, r.last4 or "", r.account_type or "", r.sec_code or "",
                         r.holder or ""])
    return out.getvalue()
