"""Reading IPpay request XML and writing reply XML (ippay-protocol.md §2, §4).

Requests are parsed with defusedxml because the simulator accepts XML from any
client, including hostile ones (entity expansion, external entities).
"""

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

#: §2.1: ``<ippay>`` is the documented root; ``<JetPay>`` is the legacy root the live
#: gateway still accepts [S]. XML is case-sensitive, so only these spellings are read.
ROOTS = ("ippay", "JetPay")

#: §4.2/§4.3: reply elements, in the order of the one real test-gateway reply (AGR)
#: followed by the optional ones. Only those that apply are written.
REPLY_FIELDS = (
    "TransactionID", "ActionCode", "Approval", "ResponseText", "AVS", "CVV2",
    "Token", "ipTransID", "ErrMsg", "AdditionalInfo",
)


class RequestXMLError(ValueError):
    """The body is not a well-formed, safe IPpay request document."""


@dataclass(frozen=True)
class Node:
    """One element: stripped text, attributes, and its children by name.

    Children are keyed by tag; when a tag repeats, the first one counts.
    """

    text: str = ""
    attrs: dict = field(default_factory=dict)
    children: dict = field(default_factory=dict)

    def get(self, name):
        """The stripped text of child ``name``, or "" when absent or blank."""
        child = self.children.get(name)
        return child.text if child is not None else ""

    def child(self, name):
        """Child ``name`` as a Node (an empty Node when absent)."""
        return self.children.get(name, EMPTY)

    def flag(self, name, attr):
        """True when child ``name`` carries ``attr="true"`` (e.g. ``Tokenize``)."""
        child = self.children.get(name)
        return child is not None and child.attrs.get(attr, "").strip().lower() == "true"


EMPTY = Node()


@dataclass(frozen=True)
class GatewayRequest:
    """A parsed request: the root's name (``ippay`` or ``JetPay``) and its element tree."""

    root: str
    body: Node


def _node(element):
    children = {}
    for child in element:
        if isinstance(child.tag, str):
            children.setdefault(child.tag, _node(child))
    return Node(text=(element.text or "").strip(), attrs=dict(element.attrib), children=children)


def parse_request(body):
    """Parse raw request bytes into a GatewayRequest.

    §2.1: elements may come in any order and unknown ones are ignored, so the
    children are read into a mapping rather than checked against a schema.
    """
    try:
        root = fromstring(body)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise RequestXMLError(f"Unable to parse the XML request: {exc}") from None
    if root.tag not in ROOTS:
        raise RequestXMLError("Invalid root element.")
    return GatewayRequest(root=root.tag, body=_node(root))


def response_root(request_root, transaction_type):
    """§4.1 simulator rule: ``JetPayResponse`` for a ``<JetPay>`` request,
    ``IPPayResponse`` for TOKENIZE, ``ippayResponse`` otherwise."""
    if request_root == "JetPay":
        return "JetPayResponse"
    if transaction_type == "TOKENIZE":
        return "IPPayResponse"
    return "ippayResponse"


def build_reply(root, fields):
    """Serialise a reply: ``fields`` maps REPLY_FIELDS names to strings; None values
    are left out (§4.2: no empty placeholders). Returns ASCII bytes."""
    lines = [f"<{root}>"]
    for name in REPLY_FIELDS:
        value = fields.get(name)
        if value is not None:
            lines.append(f"  <{name}>{escape(value)}</{name}>")
    lines.append(f"</{root}>")
    return ("\n".join(lines) + "\n").encode("ascii", "xmlcharrefreplace")
