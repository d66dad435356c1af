"""The simulator's memory: the transaction ledger, the token vault, the raw
request log and the counters that generate IDs.

One lock guards it all. Callers hold ``store.lock`` while they read the ledger
and commit their changes, so a decision and its commit are atomic; nobody sleeps
while holding it (app.py sleeps outside).
"""

import datetime
import itertools
import threading
from dataclasses import dataclass, field

from .returns import ReturnError

#: Entry types and statuses that money has actually moved on, so ``settle`` can
#: close them (after which VOID no longer applies, §8).
_SETTLEABLE = {"SALE", "FORCE", "CAPT", "CREDIT", "CHECK", "REVERSAL"}
_SETTLEABLE_STATUS = {"captured", "credited", "accepted"}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _text(body):
    """Request bytes as text: UTF-8, or ISO-8859-1 (which some JetPay clients declare)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("iso-8859-1")


@dataclass
class Entry:
    """One processed transaction message.

    Originating messages (SALE, AUTHONLY, FORCE, CHECK, unlinked CREDIT/REVERSAL,
    TOKENIZE) open a (TerminalID, TransactionID); follow-ups (CAPT, VOID,
    REVERSEAUTH, linked CREDIT/REVERSAL) reuse the original's ID (§8) and are kept
    in order under it. ``captured`` and ``refunded`` are kept on the originating
    entry. ``source_ref`` (the deterministic token of the card or account) and
    ``expiry`` are internal: they let VOID/CREDIT check the card and ipTransID
    reuse the payment data, without the simulator ever storing a PAN.
    """

    terminal_id: str
    transaction_id: str
    type: str
    status: str
    action_code: str
    response_text: str
    reply: dict
    amount: int = None
    approval: str = None
    token: str = None
    ip_trans_id: str = None
    last4: str = None
    linked: bool = False
    captured: int = 0
    refunded: int = 0
    settled: bool = False
    source_ref: str = None
    expiry: tuple = None
    date: str = None  # the simulated date it was processed on (clock.py)
    ach: dict = None  # ACH Type, SEC and holder name of a CHECK or REVERSAL (returns report)
    return_code: str = None  # set when a CHECK is returned (returns.py)
    seq: int = 0
    created_at: str = field(default_factory=_now)

    def to_json(self):
        """The public view for ``GET /_sim/ledger`` (internal fields left out)."""
        return {
            "seq": self.seq, "terminal_id": self.terminal_id,
            "transaction_id": self.transaction_id, "type": self.type,
            "amount": self.amount, "status": self.status, "action_code": self.action_code,
            "response_text": self.response_text, "approval": self.approval,
            "token": self.token, "ip_trans_id": self.ip_trans_id, "last4": self.last4,
            "linked": self.linked, "captured": self.captured, "refunded": self.refunded,
            "settled": self.settled, "date": self.date, "return_code": self.return_code,
            "created_at": self.created_at, "reply": dict(self.reply),
        }


@dataclass
class TokenRecord:
    """A token issued to one terminal (§6): what it stands for, minus the number."""

    token: str
    terminal_id: str
    kind: str  # "card" or "ach"
    last4: str
    expiry: tuple = None  # (month, four-digit year) for cards
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    def to_json(self):
        """The public view of a token (no card or account number)."""
        month, year = self.expiry or (None, None)
        return {
            "token": self.token, "terminal_id": self.terminal_id, "kind": self.kind,
            "last4": self.last4, "exp_month": month, "exp_year": year,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }


class Store:
    """Ledger, token vault, request log and counters, behind one lock."""

    def __init__(self):
        self.lock = threading.RLock()
        #: Scripted outcomes per card (control plane ``/_sim/card-rules``): last four digits
        #: → the ActionCodes its next SALEs get, in order.
        self.card_rules = {}
        self.reset()

    def set_card_rules(self, rules):
        """Script the next SALE outcomes of cards by their last four digits:
        ``[{"last4": "0051", "codes": ["051", "051", "000"]}]`` (replaces every rule)."""
        parsed = {}
        for rule in rules:
            last4, codes = str(rule.get("last4", "")), rule.get("codes")
            if not (len(last4) == 4 and last4.isdigit()) or not isinstance(codes, list) or not all(
                    isinstance(c, str) and len(c) == 3 and c.isdigit() for c in codes):
                raise ValueError('each rule: {"last4": "NNNN", "codes": ["051", ...]}')
            parsed[last4] = list(codes)
        with self.lock:
            self.card_rules = parsed

    def next_card_code(self, last4):
        """The scripted ActionCode of this card's next SALE, or None (the usual rules)."""
        with self.lock:
            codes = self.card_rules.get(last4)
            return codes.pop(0) if codes else None

    def reset(self):
        """Forget every transaction, token and request; restart the counters."""
        with self.lock:
            self.card_rules = {}
            self._entries = []
            self._index = {}
            self._by_ip_trans_id = {}
            self._tokens = {}
            self._requests = []
            self._returns = []
            self._ip_counter = itertools.count(1)
            self._id_counter = itertools.count(1)

    # -- reads (call with the lock held when a decision depends on them) --

    def lookup(self, terminal_id, transaction_id):
        """Entries under (TerminalID, TransactionID), originating one first."""
        return list(self._index.get((terminal_id, transaction_id.upper()), ()))

    def by_ip_trans_id(self, terminal_id, ip_trans_id):
        """The entry that answered with this ipTransID on this terminal, if any."""
        entry = self._by_ip_trans_id.get(ip_trans_id)
        return entry if entry is not None and entry.terminal_id == terminal_id else None

    def token(self, terminal_id, token):
        """The TokenRecord for ``token`` if it was issued to ``terminal_id``."""
        record = self._tokens.get(token)
        return record if record is not None and record.terminal_id == terminal_id else None

    # -- generated identifiers --

    def next_ip_trans_id(self):
        """§4.2: ipTransID is numeric and zero-padded (OFF-RPT shows 26 digits)."""
        with self.lock:
            return f"{next(self._ip_counter):026d}"

    def new_transaction_id(self, terminal_id=None):
        """§2.2 row 3 [C] AGR: 1 letter + YYYYMMDDhhmmss + 3 digits (18 characters),
        unused on ``terminal_id`` when one is given."""
        with self.lock:
            while True:
                stamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
                candidate = f"B{stamp}{next(self._id_counter) % 1000:03d}"
                if terminal_id is None or (terminal_id, candidate) not in self._index:
                    return candidate

    # -- writes --

    def commit(self, entry=None, updates=(), tokens=(), index=True, returns=()):
        """Apply a decision: add ``entry``, set fields on existing entries
        (``updates`` is a list of ``(entry, {field: value})``), save ``tokens``
        and schedule ACH ``returns``. ``index=False`` records the entry without
        claiming its TransactionID."""
        with self.lock:
            self._returns.extend(returns)
            for target, changes in updates:
                for name, value in changes.items():
                    setattr(target, name, value)
            for record in tokens:
                existing = self._tokens.get(record.token)
                if existing is not None:
                    record.created_at = existing.created_at
                self._tokens[record.token] = record
            if entry is not None:
                entry.seq = len(self._entries) + 1
                self._entries.append(entry)
                if index and entry.transaction_id:
                    key = (entry.terminal_id, entry.transaction_id.upper())
                    self._index.setdefault(key, []).append(entry)
                if entry.ip_trans_id:
                    self._by_ip_trans_id[entry.ip_trans_id] = entry

    def log_request(self, path, content_type, body):
        """Keep a raw request body, in arrival order (tests search it for PANs); return its record."""
        with self.lock:
            record = {
                "seq": len(self._requests) + 1, "received_at": _now(), "path": path,
                "content_type": content_type, "body": _text(body), "reply_status": None, "reply": None,
            }
            self._requests.append(record)
            return record

    def log_reply(self, record, status, body):
        """Note on a request's record what was answered to it (HTTP status and body, as sent)."""
        with self.lock:
            record["reply_status"], record["reply"] = status, _text(body)

    def settle(self, terminal_id=None, transaction_id=None):
        """Close the batch: mark captured, credited and accepted entries settled.
        Returns how many entries changed."""
        with self.lock:
            count = 0
            for entry in self._entries:
                if terminal_id and entry.terminal_id != terminal_id:
                    continue
                if transaction_id and entry.transaction_id.upper() != transaction_id.upper():
                    continue
                if (entry.type in _SETTLEABLE and entry.status in _SETTLEABLE_STATUS
                        and not entry.settled):
                    entry.settled = True
                    count += 1
            return count

    def schedule_return(self, record):
        """Schedule an ACH return (returns.py) unless its CHECK already has one; return it."""
        with self.lock:
            if any(r.terminal_id == record.terminal_id and r.transaction_id.upper() == record.transaction_id.upper()
                   for r in self._returns):
                raise ReturnError("a return is already scheduled for this CHECK")
            self._returns.append(record)
            return record

    def produce_returns(self, today):
        """Produce every scheduled return due on or before ``today``: the CHECK becomes ``returned``."""
        with self.lock:
            for record in self._returns:
                if record.produced or record.due_date > today.isoformat():
                    continue
                record.produced = True
                for entry in self._index.get((record.terminal_id, record.transaction_id.upper()), ()):
                    if entry.type == "CHECK":
                        entry.status, entry.return_code = "returned", record.code

    def returns(self, produced=None):
        """The ACH returns (a copy), in order of their due date; ``produced`` filters."""
        with self.lock:
            chosen = [r for r in self._returns if produced is None or r.produced == produced]
        return sorted(chosen, key=lambda r: (r.due_date, r.transaction_id))

    # -- views for the control plane --

    def ledger(self, terminal_id=None, transaction_id=None):
        """Every stored transaction and token, as JSON-ready dicts."""
        with self.lock:
            entries = [
                e.to_json() for e in self._entries
                if (not terminal_id or e.terminal_id == terminal_id)
                and (not transaction_id or e.transaction_id.upper() == transaction_id.upper())
            ]
            tokens = [t.to_json() for t in self._tokens.values()]
        return {"transactions": entries, "tokens": tokens}

    def requests(self):
        """Every raw request body received, in order."""
        with self.lock:
            return [dict(r) for r in self._requests]

    def counts(self):
        """How many transactions, tokens and requests are kept (``/_sim/health``)."""
        with self.lock:
            return {"transactions": len(self._entries), "tokens": len(self._tokens),
                    "requests": len(self._requests)}
