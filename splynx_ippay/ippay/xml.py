"""Pure functions that write IPpay request XML and read IPpay replies.

Nothing here touches the network. The request side follows ippay §2; the reply
side follows ippay §4 and the defensive-parsing checklist of ippay §9.3.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as _stdlib_et
from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

import defusedxml.ElementTree as _safe_et
from defusedxml import DefusedXmlException

__all__ = [
    "FIELD_ORDER",
    "Node",
    "build_request",
    "parse_response",
    "ResponseFormatError",
    "RESPONSE_FIELDS",
]

# Root-level request elements in emission order: ippay §2.2 rows 1-30, which
# follow UCRM's converter and BOP's field map. The gateway probably ignores the
# order (ippay §2.1), but a fixed order makes transcripts comparable.
# ``AccountNumber`` and ``ABA`` at root level are only used by the bank-account
# TOKENIZE of OCA/OMNI (ippay §6); they take the place of the ACH container.
# ``ActionCode`` (row 27, "not currently used") is deliberately absent.
FIELD_ORDER: tuple = (
    "TransactionType", "TerminalID", "TransactionID", "Approval", "RoutingCode", "Origin",
    "Password", "OrderNumber", "CardNum", "CVV2", "Token", "Issue", "CardExpMonth",
    "CardExpYear", "CardStartMonth", "CardStartYear", "Track1", "Track2",
    "AccountNumber", "ABA", "ACH", "Scrutiny", "CardName", "DispositionType",
    "TotalAmount", "FeeAmount", "TaxAmount", "BillingAddress", "BillingCity",
    "BillingStateProv", "BillingPostalCode", "BillingCountry", "BillingPhone", "Email",
    "UserIPAddress", "UserHost", "UDField1", "UDField2", "UDField3", "IndustryInfo",
    "Verification", "ShippingInfo", "ipTransID",
)
_ORDER_INDEX = {name: i for i, name in enumerate(FIELD_ORDER)}

# Reply elements the client knows (ippay §4.2), keyed by lower-case name so that
# a reply is read whatever the case of its tags.
RESPONSE_FIELDS: tuple = (
    "TransactionID", "ActionCode", "Approval", "ResponseText", "AVS", "AddressMatch",
    "ZipMatch", "CVV2", "VerificationResult", "Token", "ipTransID", "ErrMsg",
    "AdditionalInfo",
)
_RESPONSE_CANONICAL = {name.lower(): name for name in RESPONSE_FIELDS}

# Roots that only a *request* has (ippay §2.1). A reply with such a root is the
# gateway echoing the request back (ippay §9.4, BOP's failure mode).
_REQUEST_ROOTS = frozenset({"ippay", "jetpay"})
# Children that only a request carries; finding one in a reply also means echo.
_REQUEST_ONLY_CHILDREN = frozenset({"transactiontype", "cardnum", "cardexpmonth", "track1", "track2"})

# XML 1.0 forbids these even as character references, so they cannot be sent.
_FORBIDDEN_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ELEMENT_NAME_RE = re.compile(r"^[A-Za-z_][\w.-]*$")


@dataclass(frozen=True)
class Node:
    """A request element with attributes and/or children, e.g. ``<ACH Type="CHECKING">``.

    ``children`` is a sequence of ``(name, value)`` pairs emitted in the given
    order; a value is a ``str``/``int`` or another :class:`Node`.
    """

    text: Union[str, int, None] = None
    attrs: Mapping[str, str] = field(default_factory=dict)
    children: Sequence = ()


class ResponseFormatError(ValueError):
    """A reply that cannot be trusted as an answer (ippay §9.3).

    ``kind`` is ``"empty_body"``, ``"malformed"``, ``"echo"``,
    ``"no_action_code"`` or ``"bad_action_code"``; ``err_msg`` carries a
    stripped ErrMsg when the reply had one. The message never quotes the body.
    """

    def __init__(self, kind: str, message: str, err_msg: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.err_msg = err_msg


def _escape(value: str, *, attribute: bool = False) -> str:
    # ippay §1 "Encoding": ASCII-safe is best, escape & < >. Anything outside
    # ASCII becomes a character reference so the body is pure ASCII whatever
    # encoding the gateway assumes.
    if _FORBIDDEN_CHARS_RE.search(value):
        raise ValueError("contains a control character")
    out = []
    for ch in value:
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif attribute and ch == '"':
            out.append("&quot;")
        elif attribute and ch in "\t\n\r":
            out.append("&#%d;" % ord(ch))
        elif ord(ch) > 126:
            out.append("&#%d;" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _render(name: str, value, indent: str, out: list) -> None:
    if not _ELEMENT_NAME_RE.match(name):
        raise ValueError(f"invalid element name {name!r}")
    try:
        _render_element(name, value, indent, out)
    except ValueError as exc:
        if str(exc).startswith("field "):
            raise
        # Name the field, never the value: it may be a card number.
        raise ValueError(f"field {name} {exc}") from None


def _render_element(name: str, value, indent: str, out: list) -> None:
    if isinstance(value, Node):
        attrs = "".join(
            f' {key}="{_escape(str(val), attribute=True)}"' for key, val in value.attrs.items()
        )
        if value.children:
            out.append(f"{indent}<{name}{attrs}>")
            for child_name, child_value in value.children:
                if child_value is None:
                    continue
                _render(child_name, child_value, indent + "  ", out)
            out.append(f"{indent}</{name}>")
        elif value.text is None:
            out.append(f"{indent}<{name}{attrs}/>")
        else:
            out.append(f"{indent}<{name}{attrs}>{_escape(str(value.text))}</{name}>")
    else:
        out.append(f"{indent}<{name}>{_escape(str(value))}</{name}>")


def build_request(transaction_type: str, terminal_id: str, fields: Mapping[str, object],
                  *, root: str = "ippay") -> str:
    """Return the XML text of one IPpay request.

    ``fields`` maps element names of :data:`FIELD_ORDER` to values (``str``,
    ``int`` or :class:`Node`); ``None`` values are left out, because IPpay
    sends no empty placeholders (ippay §4.2) and an empty element could be
    read as a value. Elements are emitted in the order of ippay §2.2 under the
    root ``<ippay>`` (ippay §2.1), with no XML declaration; the text is pure
    ASCII. Raises :class:`ValueError` for an unknown element name or a value
    that XML cannot carry (the message names the field, not the value).
    """
    unknown = [name for name in fields if name not in _ORDER_INDEX]
    if unknown:
        raise ValueError(f"unknown IPpay request element(s): {', '.join(sorted(unknown))}")
    merged = dict(fields)
    merged["TransactionType"] = transaction_type
    merged["TerminalID"] = terminal_id
    out = [f"<{root}>"]
    for name in sorted((n for n, v in merged.items() if v is not None), key=_ORDER_INDEX.__getitem__):
        _render(name, merged[name], "  ", out)
    out.append(f"</{root}>")
    return "\n".join(out) + "\n"


def _local_name(tag: str) -> str:
    # "{namespace}Name" -> "Name"; IPpay uses no namespaces (ippay §2.1), but a
    # proxy or future version might.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parse_xml(body: bytes):
    body = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        return _safe_et.fromstring(body)
    except (_stdlib_et.ParseError, DefusedXmlException, ValueError, UnicodeError):
        pass
    # Latin-1 bytes without an encoding declaration are not valid UTF-8; read
    # them as Latin-1 text rather than failing (ippay §1: JetPay samples use
    # ISO-8859-1). A declaration, if any, is dropped since the text is decoded.
    try:
        body.decode("utf-8")
        return None  # valid UTF-8 that still failed: genuinely malformed
    except UnicodeDecodeError:
        pass
    text = re.sub(r"^<\?xml[^>]*\?>", "", body.decode("latin-1"))
    try:
        return _safe_et.fromstring(text)
    except (_stdlib_et.ParseError, DefusedXmlException, ValueError):
        return None


def parse_response(body) -> dict:
    """Read an IPpay reply and return its fields as ``{canonical name: stripped text}``.

    The root element's name and case are ignored (``ippayResponse``,
    ``IPPayResponse``, ``JetPayResponse``..., ippay §4.1) and so is the case of
    the child tags; known fields get the spelling of ippay §4.2
    (``ActionCode``, ``ResponseText``, ``ipTransID``...), unknown ones keep
    theirs. Texts are stripped of surrounding whitespace (ippay §9.3), empty
    elements are left out, and the ActionCode is normalised to three digits.

    Parsing uses defusedxml, so entity expansion and external entities are
    refused. Raises :class:`ResponseFormatError` for an empty body, a body
    that is not XML, a reply that echoes the request, or one without a usable
    ActionCode.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is None or not body.strip():
        raise ResponseFormatError("empty_body", "the gateway sent an empty body")
    root = _parse_xml(bytes(body))
    if root is None:
        raise ResponseFormatError("malformed", f"the gateway sent a body that is not XML ({len(body)} bytes)")

    children = [c for c in list(root) if isinstance(c.tag, str)]
    child_names = {_local_name(c.tag).lower() for c in children}
    if _local_name(root.tag).lower() in _REQUEST_ROOTS or child_names & _REQUEST_ONLY_CHILDREN:
        raise ResponseFormatError("echo", "the gateway echoed the request instead of answering it")

    fields: dict = {}
    action_codes = set()
    for child in children:
        name = _local_name(child.tag)
        canonical = _RESPONSE_CANONICAL.get(name.lower(), name)
        text = "".join(child.itertext()).strip()
        if canonical == "ActionCode" and text:
            action_codes.add(text)
        if text and canonical not in fields:
            fields[canonical] = text

    err_msg = fields.get("ErrMsg")
    if not action_codes:
        raise ResponseFormatError("no_action_code", "the gateway reply has no ActionCode", err_msg)
    if len(action_codes) > 1:
        raise ResponseFormatError("bad_action_code", "the gateway reply has conflicting ActionCodes", err_msg)
    code = action_codes.pop()
    # ActionCode is three characters (ippay §4.2); tolerate a gateway that
    # drops leading zeros ("5" -> "005") but nothing that is not a number.
    if not re.fullmatch(r"\d{1,3}", code):
        raise ResponseFormatError("bad_action_code", "the gateway reply has an ActionCode that is not a number",
                                  err_msg)
    fields["ActionCode"] = code.zfill(3)
    return fields
