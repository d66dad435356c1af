"""What the IPpay unit tests share: test data, a recording stand-in for ``requests.Session`` and
reply builders. No server runs in the unit layer: as ActiveMerchant's JetPay test stubs
``ssl_post``, ``FakeSession`` records what would be posted and answers from a queue."""

import re
import xml.etree.ElementTree as ET

from splynx_ippay.ippay import BankAccount, Card, IPpayClient

PAN = "4000300020001000"
CVV = "737"
TID = "ABCDEFGHIJ12345678"
TOKEN = "4B3J7E7D7K2A1000"
ACCOUNT = BankAccount("1234567890", "111000025")
SOFTWARE = "splynx-ippay/test"


class FakeResponse:
    """Just enough of requests.Response for the client (stream=True reading)."""

    def __init__(self, body=b"", status=200, exc=None):
        self.status_code = status
        self._body = body.encode() if isinstance(body, str) else body
        self._exc = exc

    def iter_content(self, chunk_size=1):
        if self._exc:
            raise self._exc
        for i in range(0, len(self._body), chunk_size):
            yield self._body[i:i + chunk_size]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeSession:
    """Records every POST and answers from a queue of replies (bytes, FakeResponse or exception)."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls = []

    def post(self, url, **kwargs):
        self.calls.append(dict(kwargs, url=url))
        reply = self.replies.pop(0) if self.replies else ok_reply(kwargs["data"])
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, FakeResponse):
            return reply
        return FakeResponse(reply)

    @property
    def bodies(self):
        return [c["data"].decode("ascii") for c in self.calls]

    def close(self):
        pass


def ok_reply(request_body=b"", **extra):
    """A 000 reply echoing the request's TransactionID (as IPpay does, ippay §4.2)."""
    match = re.search(rb"<TransactionID>([^<]*)<", request_body or b"")
    fields = {"ActionCode": "000", "ResponseText": "APPROVED"}
    if match:
        fields = {"TransactionID": match.group(1).decode(), **fields}
    if b"TOKENIZE" in (request_body or b""):
        fields.update(ResponseText="TOKENIZED", Token=TOKEN)
    fields.update(extra)
    return reply_xml(**fields)


def reply_xml(root="ippayResponse", **fields):
    return ("<%s>" % root + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</%s>" % root).encode()


def make_client(session, **kwargs):
    kwargs.setdefault("software", SOFTWARE)
    return IPpayClient("https://testgtwy.example/ippay", "TESTTERMINAL", session=session, **kwargs)


def children(body):
    root = ET.fromstring(body)
    return root, [(c.tag, c.text) for c in root]


def card(**kw):
    kw.setdefault("number", PAN)
    kw.setdefault("exp_month", 9)
    kw.setdefault("exp_year", 2030)
    return Card(**kw)


def sent(call, *args, **kwargs):
    """Run ``call`` on a client with a fake session; return (result, parsed request root, the post's kwargs)."""
    session = FakeSession()
    client = make_client(session)
    result = getattr(client, call)(*args, **kwargs)
    assert len(session.calls) == 1
    return result, ET.fromstring(session.bodies[0]), session.calls[0]


def fields_of(root):
    return {c.tag: c.text for c in root}


def decline(**fields):
    return make_client(FakeSession(reply_xml(TransactionID=TID, **fields))).sale(TID, 1005, token=TOKEN)
