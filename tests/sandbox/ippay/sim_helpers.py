"""Helpers of the simulator's contract tests: hand-written request documents and raw HTTP.

Only raw HTTP and hand-written XML are used in tests/sandbox/ippay, never the project's own
IPpay client, so the simulator is checked against ippay-protocol.md rather than against what
one client happens to send.
"""

import datetime
import re

import requests
from defusedxml.ElementTree import fromstring

CARD = "4000300020001000"  # §7: the official example card
AMEX = "378282246310005"
BAD_LUHN = "4111111111111112"  # §7 [S] BOP
NEXT_YEAR = f"{(datetime.date.today().year + 1) % 100:02d}"
CARD_FIELDS = {"CardNum": CARD, "CardExpMonth": "09", "CardExpYear": NEXT_YEAR}
ACH = ("<AccountNumber>{account}</AccountNumber><ABA>{aba}</ABA>"
       "<CheckNumber>{check}</CheckNumber>")


def el(name, text="", **attrs):
    attributes = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<{name}{attributes}>{text}</{name}>"


def doc(transaction_type, root="ippay", terminal="TESTTERMINAL", **fields):
    """A request document. A field value may be ``(text, {attr: value})``; texts
    are inserted raw, so nested XML (ACH) can be passed as a string."""
    parts = []
    if transaction_type is not None:
        parts.append(el("TransactionType", transaction_type))
    if terminal is not None:
        parts.append(el("TerminalID", terminal))
    for name, value in fields.items():
        text, attrs = value if isinstance(value, tuple) else (value, {})
        parts.append(el(name, text, **attrs))
    return f"<{root}>{''.join(parts)}</{root}>"


def sale(transaction_id, amount, type_="SALE", **extra):
    fields = {"TransactionID": transaction_id, **CARD_FIELDS, "TotalAmount": str(amount)}
    fields.update(extra)
    return doc(type_, **fields)


def ach(account="12345", aba="111000025", check="100", acct_attrs=""):
    inner = ACH.format(account=account, aba=aba, check=check)
    if acct_attrs:
        inner = inner.replace("<AccountNumber>", f"<AccountNumber {acct_attrs}>")
    return (inner, {"Type": "CHECKING", "SEC": "WEB"})


def post(sim, body, timeout=5, **kwargs):
    return requests.post(sim.url + "/ippay", data=body, timeout=timeout, **kwargs)


def parse(response):
    """``(root tag, {child: raw text})`` of a 200 text/xml reply."""
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    root = fromstring(response.content)
    return root.tag, {child.tag: child.text or "" for child in root}


def call(sim, body):
    """The children of the reply to ``body``."""
    return parse(post(sim, body))[1]


def control(sim, path, payload=None):
    url = f"{sim.url}/_sim/{path}"
    response = requests.post(url, json=payload) if payload is not None else requests.get(url)
    return response


def configure(sim, **switches):
    response = control(sim, "config", switches)
    assert response.status_code == 200, response.text
    return response.json()


def add_faults(sim, *faults, **random_share):
    body = {"faults": list(faults)} if faults else random_share
    response = control(sim, "faults", body)
    assert response.status_code == 200, response.text
    return response.json()


def ledger(sim, transaction_id=None):
    params = {"transaction_id": transaction_id} if transaction_id else {}
    return requests.get(sim.url + "/_sim/ledger", params=params).json()


def enq(sim, transaction_id, root="ippay"):
    return call(sim, doc("ENQ", root=root, TransactionID=transaction_id))


def tokenize(sim, pan=CARD, terminal="TESTTERMINAL", month="09", year=NEXT_YEAR):
    return call(sim, doc("TOKENIZE", terminal=terminal, CardNum=pan, CardExpMonth=month,
                         CardExpYear=year))


def assert_error(reply, message):
    """§10: validation errors are 900 + ErrMsg + ResponseText DECLINED."""
    assert reply["ActionCode"] == "900"
    assert reply["ResponseText"] == "DECLINED"
    assert reply["ErrMsg"] == message


def assert_token_format(token, pan):
    assert len(token) == len(pan) and token != pan
    assert token[0] == pan[0] and token[-4:] == pan[-4:]
    assert re.fullmatch(r"[A-Z0-9]+", token[1:-4]) and re.search(r"[A-Z]", token)


def void(transaction_id, approval, amount, **card):
    fields = card or {"CardNum": CARD, "CardExpMonth": "09", "CardExpYear": NEXT_YEAR}
    return doc("VOID", TransactionID=transaction_id, Approval=approval, TotalAmount=str(amount),
               **fields)


def credit(transaction_id, amount, **card):
    return doc("CREDIT", TransactionID=transaction_id, TotalAmount=str(amount),
               **(card or CARD_FIELDS))

