"""What the test gateway decides for each TransactionType (ippay-protocol.md §3,
§7, §8 and the §10 behaviour contract).

``Processor(store, cfg, request).run()`` reads the ledger and returns an
``Outcome``: the reply plus the changes to commit. It never writes to the store
itself, so the caller can drop the changes (the ``timeout_no_commit`` fault)
and can commit them atomically with the decision (hold ``store.lock`` around
``run()`` and ``commit()``).
"""

import datetime
from dataclasses import dataclass, field

from . import returns
from .rules import (
    Rejection, approval_code, ach_token, card_token, check_aba, check_account_number,
    check_card_number, check_cvv2, invalid, is_expired, not_found, parse_amount,
    parse_expiry, penny_decision,
)
from .store import Entry, TokenRecord
from .xml import build_reply, response_root

_ACH_TYPES = ("CHECK", "REVERSAL")
_ACH_FIELD_REQUIRED = "{} is required for all CHECK, REVERSAL, VOIDACH transactions."
_EXPIRY_REQUIRED = "Card Expiration Date required for transactions without a TOKEN present."
_MISMATCH = "{} does not match the original transaction."


@dataclass
class Outcome:
    """A reply and the ledger changes that go with it.

    ``fields`` None means an empty body (§5.4: blank TerminalID). ``reply_type``
    picks the root name (§4.1); ``index`` False records ``entry`` without
    claiming its TransactionID (TOKENIZE, see ``Processor._tokenize``);
    ``returns`` are ACH returns to schedule (returns.py).
    """

    request_root: str
    reply_type: str
    fields: dict = None
    entry: Entry = None
    updates: list = field(default_factory=list)
    tokens: list = field(default_factory=list)
    index: bool = True
    returns: list = field(default_factory=list)

    def body(self):
        """The reply as bytes (empty for an empty-body reply)."""
        if self.fields is None:
            return b""
        return build_reply(response_root(self.request_root, self.reply_type), self.fields)


@dataclass(frozen=True)
class Source:
    """The card or bank account a request pays with, without its number.

    ``ref`` is the deterministic token of the card/account (§6), equal to the
    token the gateway would issue for it, so comparing refs tells whether a VOID
    or refund names the same card as the original.
    """

    kind: str  # "card" or "ach"
    ref: str
    last4: str
    expiry: tuple = None
    token: str = None  # the token the request paid with, if any
    tokenize: bool = False  # Tokenize="true" was set on CardNum/AccountNumber


class Processor:
    """Decides one parsed request against the current ledger and switches."""

    def __init__(self, store, cfg, request, today=None):
        self.store = store
        self.cfg = cfg
        self.today = today or datetime.date.today()  # the simulated date (clock.py)
        self.request = request
        self.body = request.body
        self.terminal = self.body.get("TerminalID")
        self.type = self.body.get("TransactionType")
        self.sent_id = self.body.get("TransactionID")

    def run(self):
        """Return the Outcome for the request."""
        try:
            return self._dispatch()
        except Rejection as rejection:
            return self._rejected(rejection)

    def _dispatch(self):
        # §5.4/§10: the terminal is the credential, checked before anything else.
        if not self.terminal:
            if self.cfg["blank_terminal"] == "empty":
                return Outcome(self.request.root, self.type)
            raise invalid("TerminalID required for ALL transactions.")
        if self.terminal not in self.cfg["terminals"]:
            if self.cfg["unknown_terminal"] == "empty":
                return Outcome(self.request.root, self.type)
            raise invalid("Cannot determine the URL for the processor.")
        if not self.type:
            raise invalid("No TransactionType supplied.")
        handler = _HANDLERS.get(self.type)
        # §3: INCREMENTAL, PARTIALREVERSAL and ACK have no known payload, so they get
        # the answer BOP recorded for a type the terminal does not offer (§5.4).
        if handler is None or (self.type == "REVERSEAUTH" and not self.cfg["reverseauth_enabled"]):
            raise invalid("The transaction type is not a valid transaction type.")
        return handler(self)

    # -- building replies and entries --

    def _rejected(self, rejection):
        fields = _rejection_fields(rejection, self.cfg)
        fields["TransactionID"] = self.sent_id or None
        return Outcome(self.request.root, self.type, fields)

    def _outcome(self, fields, entry=None, updates=(), tokens=(), index=True, returns=()):
        return Outcome(self.request.root, self.type, fields, entry, list(updates), list(tokens),
                       index, list(returns))

    def _replay(self, entry):
        """§8/§10: answer with a reply recorded earlier (ENQ, duplicate replay)."""
        return Outcome(self.request.root, entry.type, dict(entry.reply))

    def _entry(self, transaction_id, status, fields, amount=None, source=None, **extra):
        """An Entry for this request; ``token`` defaults to the token paid with."""
        extra.setdefault("token", source.token if source else None)
        return Entry(
            terminal_id=self.terminal, transaction_id=transaction_id, type=self.type,
            status=status, action_code=fields.get("ActionCode"),
            response_text=fields.get("ResponseText"),
            reply={k: v for k, v in fields.items() if v is not None}, amount=amount,
            approval=fields.get("Approval"), ip_trans_id=fields.get("ipTransID"),
            last4=source.last4 if source else None, source_ref=source.ref if source else None,
            expiry=source.expiry if source else None, date=self.today.isoformat(), **extra,
        )

    def _token_record(self, source):
        return TokenRecord(token=source.ref, terminal_id=self.terminal, kind=source.kind,
                           last4=source.last4, expiry=source.expiry)

    # -- reading fields --

    def _new_id(self):
        """§2.2 row 3: the client's TransactionID, or one the gateway generates."""
        return self.sent_id or self.store.new_transaction_id(self.terminal)

    def _original_id(self):
        """§8: follow-up types carry the original transaction's ID."""
        if not self.sent_id:
            raise invalid(f"TransactionID required with all {self.type} Transactions.")
        return self.sent_id

    def _amount(self, required=True):
        text = self.body.get("TotalAmount")
        if not text:
            if required:
                raise invalid("TotalAmount required for all non-TOKENIZE transactions.")
            return None
        return parse_amount(text)

    def _expiry(self):
        month, year = self.body.get("CardExpMonth"), self.body.get("CardExpYear")
        if not month or not year:
            raise invalid(_EXPIRY_REQUIRED)
        return parse_expiry(month, year)

    def _reuse(self, kind):
        """§2.2 ipTransID: reuse the payment data of an earlier transaction."""
        entry = self.store.by_ip_trans_id(self.terminal, self.body.get("ipTransID"))
        if entry is None or entry.source_ref is None or \
                (entry.type in _ACH_TYPES) != (kind == "ach"):
            raise invalid("Invalid ipTransID.")
        return Source(kind, entry.source_ref, entry.last4, entry.expiry, entry.token)

    def _card_source(self, missing_message):
        """The card named by CardNum (+ expiry), Token or ipTransID (§2.2 rows 9-14)."""
        body = self.body
        if body.get("CVV2"):
            check_cvv2(body.get("CVV2"), self.cfg["cvv_format_error"])
        pan = body.get("CardNum")
        if pan:
            check_card_number(pan)
            return Source("card", card_token(self.cfg["token_key"], self.terminal, pan), pan[-4:],
                          self._expiry(), tokenize=body.flag("CardNum", "Tokenize"))
        token = body.get("Token")
        if token:
            record = self.store.token(self.terminal, token)
            if record is None or record.kind != "card":
                raise invalid("Invalid Token.")
            return Source("card", token, record.last4, record.expiry, token=token)
        if body.get("ipTransID"):
            return self._reuse("card")
        raise invalid(missing_message)

    def _ach_source(self):
        """The account of a CHECK or REVERSAL: ``<ACH Type SEC>`` with AccountNumber +
        ABA, or Token, plus CheckNumber; CardName is the account holder (§2.2 row 17)."""
        ach = self.body.child("ACH")

        def require(value, name):
            if not value:
                raise invalid(_ACH_FIELD_REQUIRED.format(name))
            return value

        require(self.body.get("CardName"), "Customer Name")
        require(ach.attrs.get("Type", "").strip(), "Account Type")
        require(ach.attrs.get("SEC", "").strip(), "SEC Code")
        if ach.get("Token"):
            record = self.store.token(self.terminal, ach.get("Token"))
            if record is None or record.kind != "ach":
                raise invalid("Invalid Token.")
            source = Source("ach", record.token, record.last4, token=record.token)
        elif self.body.get("ipTransID"):
            source = self._reuse("ach")
        else:
            account = require(ach.get("AccountNumber"), "Account Number")
            aba = require(ach.get("ABA"), "ABA Number")
            check_aba(aba)
            check_account_number(account)
            source = Source("ach", ach_token(self.cfg["token_key"], self.terminal, aba, account),
                            account[-4:], tokenize=ach.flag("AccountNumber", "Tokenize"))
        check_number = require(ach.get("CheckNumber"), "Check Number")
        if not (check_number.isascii() and check_number.isdigit()):
            raise invalid("Check Number must be numeric.")
        return source

    # -- shared decisions --

    def _decide(self, source, amount):
        """§7: the test rules, for the types listed in ``cents_rule_types``."""
        if self.type not in self.cfg["cents_rule_types"]:
            return "000"
        if self.cfg["decline_expired"] and source.expiry and is_expired(source.expiry, self.today):
            return "054"
        if self._cvv_refused():
            return "806"
        scripted = self.store.next_card_code(source.last4) if self.type == "SALE" else None
        return scripted or penny_decision(amount)

    def _cvv_refused(self):
        """§10: CVV2 "000" is the simulator's "does not match" (806 when ``decline_cvv_000``)."""
        return self.cfg["decline_cvv_000"] and self.body.get("CVV2") == "000"

    def _cvv_result(self):
        """§5.3: the CVV2 result letter: none without a CVV2, N for "000", else ``cvv2_result``."""
        if not self.body.get("CVV2"):
            return None
        return "N" if self.body.get("CVV2") == "000" else self.cfg["cvv2_result"]

    def _duplicate(self, transaction_id):
        """§8 [I]: a new originating transaction reusing a TransactionID of this terminal.

        Returns the replayed first reply, None when the ID is fresh, or raises 094.
        """
        existing = self.store.lookup(self.terminal, transaction_id)
        if not existing:
            return None
        if self.cfg["duplicate_id"] == "replay":
            return self._replay(existing[0])
        raise Rejection("094", "DECLINED",
                        "Duplicate transmission: TransactionID already used on this terminal.")

    def _declined(self, transaction_id, code, amount, source):
        fields = {"TransactionID": transaction_id, "ActionCode": code,
                  "ResponseText": "DECLINED",
                  # §5.3: a CVV refusal says why; other declines carry no CVV2 (§7 [S] BOP).
                  "CVV2": "N" if code == "806" else None,
                  "ipTransID": self.store.next_ip_trans_id()}
        entry = self._entry(transaction_id, "declined", fields, amount, source)
        return self._outcome(fields, entry)

    def _refund(self, original, amount, source, response_text):
        """§8/§10: a linked CREDIT (or ACH REVERSAL) against ``original``; the amount
        may not exceed what was captured minus what was already refunded."""
        if source.ref != original.source_ref:
            raise invalid(_MISMATCH.format("Card" if source.kind == "card" else "Account"))
        if original.status == "returned":
            raise invalid("The transaction was returned by the bank; nothing is left to refund.")
        if amount > original.captured - original.refunded:
            raise invalid("Credit amount exceeds the amount available to refund.")
        code = self._decide(source, amount)
        if code != "000":
            return self._declined(original.transaction_id, code, amount, source)
        ip_trans_id = self.store.next_ip_trans_id()
        fields = {"TransactionID": original.transaction_id, "ActionCode": "000",
                  "Approval": _refund_approval(source, ip_trans_id),
                  "ResponseText": response_text, "ipTransID": ip_trans_id}
        status = "credited" if self.type == "CREDIT" else "accepted"
        entry = self._entry(original.transaction_id, status, fields, amount, source, linked=True)
        return self._outcome(fields, entry,
                             [(original, {"refunded": original.refunded + amount})])

    # -- transaction types (§3) --

    def _authorise(self):
        """SALE and AUTHONLY: decided by the penny value (§7)."""
        transaction_id = self._new_id()
        amount = self._amount()
        source = self._card_source(
            "Card Number or Token required with SALE, AUTHONLY, and FORCE Transactions.")
        replayed = self._duplicate(transaction_id)
        if replayed is not None:
            return replayed
        code = self._decide(source, amount)
        if code != "000":
            return self._declined(transaction_id, code, amount, source)
        has_address = self.body.get("BillingAddress") or self.body.get("BillingPostalCode")
        fields = {
            "TransactionID": transaction_id, "ActionCode": "000",
            "Approval": approval_code(amount), "ResponseText": "APPROVED",
            "AVS": "Y" if has_address else "U",
            "CVV2": self._cvv_result(),
            # §6: a Token comes back only when CardNum asked for one.
            "Token": source.ref if source.tokenize else None,
            "ipTransID": self.store.next_ip_trans_id(),
        }
        sale = self.type == "SALE"
        entry = self._entry(transaction_id, "captured" if sale else "authorized", fields, amount,
                            source, captured=amount if sale else 0,
                            token=source.ref if source.tokenize else source.token)
        tokens = [self._token_record(source)] if source.tokenize else []
        return self._outcome(fields, entry, tokens=tokens)

    def _force(self):
        """FORCE posts a voice-authorised sale with the Approval the caller got."""
        transaction_id = self._new_id()
        approval = self.body.get("Approval")
        if not approval:
            raise invalid("No Approval Code supplied with FORCE Transaction.")
        amount = self._amount()
        source = self._card_source(
            "Card Number or Token required with SALE, AUTHONLY, and FORCE Transactions.")
        replayed = self._duplicate(transaction_id)
        if replayed is not None:
            return replayed
        code = self._decide(source, amount)
        if code != "000":
            return self._declined(transaction_id, code, amount, source)
        fields = {"TransactionID": transaction_id, "ActionCode": "000", "Approval": approval,
                  "ResponseText": "APPROVED", "ipTransID": self.store.next_ip_trans_id()}
        entry = self._entry(transaction_id, "captured", fields, amount, source, captured=amount)
        return self._outcome(fields, entry)

    def _capture(self):
        """§10 CAPT: an authorised AUTHONLY, amount ≤ authorised, once; else 025."""
        transaction_id = self._original_id()
        amount = self._amount(required=False)
        entries = self.store.lookup(self.terminal, transaction_id)
        original = entries[0] if entries else None
        if original is None or original.type != "AUTHONLY" or original.status != "authorized":
            raise not_found()
        amount = amount or original.amount
        if amount > original.amount:
            raise not_found()
        fields = {"TransactionID": original.transaction_id, "ActionCode": "000",
                  "Approval": original.approval, "ResponseText": "APPROVED",
                  "ipTransID": self.store.next_ip_trans_id()}
        source = Source("card", original.source_ref, original.last4, original.expiry,
                        original.token)
        entry = self._entry(original.transaction_id, "captured", fields, amount, source,
                            linked=True)
        return self._outcome(fields, entry,
                             [(original, {"status": "captured", "captured": amount})])

    def _voidable(self, entry):
        if entry.type in ("SALE", "FORCE", "CAPT"):
            return entry.status == "captured"
        if entry.type == "CREDIT":
            return entry.status == "credited"
        return self.cfg["void_authonly"] and entry.type == "AUTHONLY" and \
            entry.status == "authorized"

    def _void(self):
        """§10 VOID: an unsettled SALE, CAPT or CREDIT whose Approval and amount
        match; unknown ID → 025, any mismatch → 900 + ErrMsg."""
        transaction_id = self._original_id()
        approval = self.body.get("Approval")
        if not approval:
            raise invalid("No Approval Code supplied with VOID Transaction.")
        source = self._card_source("Card Number required with all VOID Transactions.")
        amount = self._amount()
        entries = self.store.lookup(self.terminal, transaction_id)
        if not entries:
            raise not_found()
        live = [e for e in entries if self._voidable(e)]
        if not live:
            if any(e.status == "voided" for e in entries):
                raise invalid("The transaction has already been voided.")
            raise invalid("Only an approved SALE, CAPT or CREDIT can be voided.")
        live = [e for e in live if not e.settled]
        if not live:
            raise invalid("The transaction has settled; refund it with CREDIT instead.")
        live = [e for e in live if e.approval == approval]
        if not live:
            raise invalid(_MISMATCH.format("Approval"))
        live = [e for e in live if e.amount == amount]
        if not live:
            raise invalid(_MISMATCH.format("TotalAmount"))
        target = live[-1]
        if source.ref != target.source_ref:
            raise invalid(_MISMATCH.format("Card"))
        original = entries[0]
        updates = [(target, {"status": "voided"})]
        if target.type in ("SALE", "FORCE"):
            updates.append((target, {"captured": 0}))
        elif target.type == "CAPT":
            updates.append((original, {"status": "voided", "captured": 0}))
        elif target.type == "CREDIT" and target.linked:
            updates.append((original, {"refunded": original.refunded - target.amount}))
        fields = {"TransactionID": original.transaction_id, "ActionCode": "000",
                  "Approval": target.approval, "ResponseText": "VOID PROCESSED",
                  "ipTransID": self.store.next_ip_trans_id()}
        entry = self._entry(original.transaction_id, "voided", fields, amount, source,
                            linked=True)
        return self._outcome(fields, entry, updates)

    def _reverse_auth(self):
        """§8 REVERSEAUTH: release an uncaptured AUTHONLY, for its full amount."""
        transaction_id = self._original_id()
        source = self._card_source("Card Number or Token required with REVERSEAUTH Transactions.")
        amount = self._amount()
        entries = self.store.lookup(self.terminal, transaction_id)
        if not entries:
            raise not_found()
        original = entries[0]
        if original.type != "AUTHONLY" or original.status != "authorized":
            raise invalid("Only an uncaptured AUTHONLY can be reversed.")
        if amount != original.amount:
            raise invalid(_MISMATCH.format("TotalAmount"))
        if source.ref != original.source_ref:
            raise invalid(_MISMATCH.format("Card"))
        fields = {"TransactionID": original.transaction_id, "ActionCode": "000",
                  "Approval": original.approval, "ResponseText": "APPROVED",
                  "ipTransID": self.store.next_ip_trans_id()}
        entry = self._entry(original.transaction_id, "reversed", fields, amount, source,
                            linked=True)
        return self._outcome(fields, entry, [(original, {"status": "reversed"})])

    def _credit(self):
        """§8 CREDIT: linked when the TransactionID names an earlier card sale,
        otherwise a new (unlinked) refund; RETURN ACCEPTED + a 6-digit Approval."""
        amount = self._amount()
        source = self._card_source("Card Number or Token required with CREDIT Transactions.")
        if self.sent_id:
            entries = self.store.lookup(self.terminal, self.sent_id)
            if entries and entries[0].type in ("SALE", "AUTHONLY", "FORCE"):
                return self._refund(entries[0], amount, source, "RETURN ACCEPTED")
        return self._new_refund(amount, source, "RETURN ACCEPTED", "credited")

    def _new_refund(self, amount, source, response_text, status):
        """An unlinked CREDIT or REVERSAL: a new originating transaction."""
        transaction_id = self._new_id()
        replayed = self._duplicate(transaction_id)
        if replayed is not None:
            return replayed
        code = self._decide(source, amount)
        if code != "000":
            return self._declined(transaction_id, code, amount, source)
        ip_trans_id = self.store.next_ip_trans_id()
        fields = {"TransactionID": transaction_id, "ActionCode": "000",
                  "Approval": _refund_approval(source, ip_trans_id),
                  "ResponseText": response_text, "ipTransID": ip_trans_id}
        entry = self._entry(transaction_id, status, fields, amount, source)
        return self._outcome(fields, entry)

    def _enquire(self):
        """§8 ENQ: replay the reply of the latest approved message under the ID (the
        original, or a later CAPT/VOID/CREDIT), or the decline; unknown → 025."""
        entries = self.store.lookup(self.terminal, self._original_id())
        if not entries:
            raise not_found()
        approved = [e for e in entries if e.action_code == "000"]
        return self._replay(approved[-1] if approved else entries[0])

    def _ping(self):
        """§3 PING: a credential check."""
        return self._outcome({"ActionCode": "000", "ResponseText": "PING"})

    def _tokenize(self):
        """§6 TOKENIZE: a card (CardNum + expiry), an expiry update (Token + expiry),
        or a bank account (ABA + AccountNumber, at the root or inside ACH).

        OFF-RPT shows token records with an empty Transaction_ID, so a TOKENIZE is
        recorded without claiming the TransactionID it may carry (UCRM sends one).
        """
        body, ach = self.body, self.body.child("ACH")
        if body.get("CVV2"):
            check_cvv2(body.get("CVV2"), self.cfg["cvv_format_error"])
        if body.get("CardNum"):
            pan = body.get("CardNum")
            check_card_number(pan)
            source = Source("card", card_token(self.cfg["token_key"], self.terminal, pan),
                            pan[-4:], self._expiry())
        elif body.get("Token"):
            record = self.store.token(self.terminal, body.get("Token"))
            if record is None or record.kind != "card":
                raise invalid("Invalid Token.")
            source = Source("card", record.token, record.last4, self._expiry())
        elif (body.get("ABA") or ach.get("ABA")) and \
                (body.get("AccountNumber") or ach.get("AccountNumber")):
            aba = body.get("ABA") or ach.get("ABA")
            account = body.get("AccountNumber") or ach.get("AccountNumber")
            check_aba(aba)
            check_account_number(account)
            source = Source("ach", ach_token(self.cfg["token_key"], self.terminal, aba, account),
                            account[-4:])
        else:
            raise invalid("Card Number and Expiration Date, Token, or ABA and AccountNumber "
                          "required with TOKENIZE Transactions.")
        if self.cfg["tokenize_checks_cvv"] and self._cvv_refused():
            # §11: unknown whether TOKENIZE checks the CVV; when it does, like a SALE (806).
            fields = {"TransactionID": self.sent_id or None, "ActionCode": "806",
                      "ResponseText": "DECLINED", "CVV2": "N"}
            entry = self._entry(self.sent_id or "", "declined", fields, source=source)
            return self._outcome(fields, entry, index=False)
        fields = {"TransactionID": self.sent_id or None, "ActionCode": "000",
                  "ResponseText": "TOKENIZED", "Token": source.ref}
        entry = self._entry(self.sent_id or "", "tokenized", fields, source=source,
                            token=source.ref)
        return self._outcome(fields, entry, tokens=[self._token_record(source)], index=False)

    def _check(self):
        """§10 CHECK: an ACH debit; CHECK ACCEPTED with Approval 000000, or a decline by the
        cents (``ach_cents_rule``). An accepted CHECK of a listed test account
        (``ach_returns``) or of $9NN.00 (``ach_return_trigger``) is returned later (returns.py)."""
        amount = self._amount()
        source = self._ach_source()
        transaction_id = self._new_id()
        replayed = self._duplicate(transaction_id)
        if replayed is not None:
            return replayed
        code = penny_decision(amount) if self.cfg["ach_cents_rule"] else "000"
        if code != "000":
            return self._declined(transaction_id, code, amount, source)
        fields = {"TransactionID": transaction_id, "ActionCode": "000", "Approval": "000000",
                  "ResponseText": "CHECK ACCEPTED",
                  "Token": source.ref if source.tokenize else None,
                  "ipTransID": self.store.next_ip_trans_id()}
        entry = self._entry(transaction_id, "accepted", fields, amount, source, captured=amount,
                            token=source.ref if source.tokenize else source.token,
                            ach=self._ach_details())
        tokens = [self._token_record(source)] if source.tokenize else []
        return self._outcome(fields, entry, tokens=tokens, returns=self._returns_of(entry, source))

    def _returns_of(self, entry, source):
        """The return an accepted CHECK is scheduled for: a listed test account first
        (``ach_returns``), else the amount trigger (``ach_return_trigger``)."""
        ach = self.body.child("ACH")
        listed = returns.listed_return(self.cfg["ach_returns"], source.last4,
                                       account_number=ach.get("AccountNumber"), token=source.token)
        if listed is not None:
            code, days = listed
            return [returns.schedule(entry, code, self.cfg["ach_return_days"] if days is None else days,
                                     self.today, origin="account")]
        code = returns.triggered_code(entry.amount) if self.cfg["ach_return_trigger"] else None
        return [returns.schedule(entry, code, self.cfg["ach_return_days"], self.today,
                                 origin="amount")] if code else []

    def _ach_details(self):
        """What the returns report shows of the account: ACH Type, SEC and holder (returns.py)."""
        ach = self.body.child("ACH")
        return {"type": ach.attrs.get("Type", "").strip(), "sec": ach.attrs.get("SEC", "").strip(),
                "holder": self.body.get("CardName")}

    def _reversal(self):
        """§3 REVERSAL: an ACH refund, linked to a CHECK by its TransactionID or new."""
        amount = self._amount()
        source = self._ach_source()
        if self.sent_id:
            entries = self.store.lookup(self.terminal, self.sent_id)
            if entries and entries[0].type == "CHECK":
                return self._refund(entries[0], amount, source, "CHECK ACCEPTED")
        return self._new_refund(amount, source, "CHECK ACCEPTED", "accepted")

    def _void_ach(self):
        """§3 [S] BOP: VOIDACH is retired."""
        raise invalid("VOIDACH transactions are no longer supported. "
                      "Please contact support@ippay.com")


def _refund_approval(source, ip_trans_id):
    """§3: card refunds carry a 6-digit Approval (BOP); ACH replies carry 000000 (§7)."""
    return "000000" if source.kind == "ach" else ip_trans_id[-6:]


_HANDLERS = {
    "SALE": Processor._authorise,
    "AUTHONLY": Processor._authorise,
    "FORCE": Processor._force,
    "CAPT": Processor._capture,
    "VOID": Processor._void,
    "REVERSEAUTH": Processor._reverse_auth,
    "CREDIT": Processor._credit,
    "ENQ": Processor._enquire,
    "PING": Processor._ping,
    "TOKENIZE": Processor._tokenize,
    "CHECK": Processor._check,
    "REVERSAL": Processor._reversal,
    "VOIDACH": Processor._void_ach,
}


def _rejection_fields(rejection, cfg):
    """§10/§11: the layout of an error reply is unknown; ``error_format`` picks
    ActionCode + ResponseText + ErrMsg (default) or ErrMsg alone for 900 errors."""
    if rejection.action_code == "900" and rejection.err_msg and \
            cfg["error_format"] == "errmsg_only":
        return {"ErrMsg": rejection.err_msg}
    return {"ActionCode": rejection.action_code, "ResponseText": rejection.response_text,
            "ErrMsg": rejection.err_msg}


def unreadable(message, cfg):
    """The reply to a body that is not an IPpay request document (wrong root or
    not well-formed XML), answered like any validation error."""
    return Outcome("ippay", None, _rejection_fields(invalid(message), cfg))
