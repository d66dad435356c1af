"""PHP-style query strings and the API v2 search language (splynx §1.4).

Splynx clients build query strings with PHP's ``http_build_query``, so nested
values arrive as ``main_attributes[status]=not_paid`` or
``main_attributes[id][0]=IN&main_attributes[id][1][0]=1``. Werkzeug keeps those
keys flat; :func:`parse_php_query` rebuilds the nesting PHP would give.
"""

import re
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from .errors import ApiError

_KEY_PART = re.compile(r"\[([^\]]*)\]")

OPERATORS = ("=", "!=", ">=", "<=", ">", "<", "<>", "IS", "REGEXP", "BETWEEN", "LIKE", "IN",
             "FIND_IN_SET")


def parse_php_query(query_string):
    """Parse ``a[b][0]=x&a[c]=y`` into ``{"a": {"b": {"0": "x"}, "c": "y"}}``.

    ``a[]=x`` appends like PHP does. Later scalars overwrite earlier ones.
    """
    if isinstance(query_string, bytes):
        query_string = query_string.decode("utf-8", "replace")
    result = {}
    for raw_key, value in parse_qsl(query_string, keep_blank_values=True):
        _assign(result, raw_key, value)
    return result


def parse_php_pairs(pairs):
    """Nest already-decoded ``(key, value)`` pairs (a form body) the same way."""
    result = {}
    for raw_key, value in pairs:
        _assign(result, raw_key, value)
    return result


def _assign(result, raw_key, value):
    bracket = raw_key.find("[")
    if bracket <= 0:
        result[raw_key] = value
        return
    parts = [raw_key[:bracket]] + _KEY_PART.findall(raw_key[bracket:])
    node = result
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "":
            part = str(sum(1 for k in node if k.isdigit())) if isinstance(node, dict) else "0"
        if last:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child


def as_list(value):
    """A PHP array ``{"0": a, "1": b}`` (or a scalar) as a Python list in key order."""
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))]
    if isinstance(value, list):
        return value
    return [value]


class Condition:
    """One ``field OP value`` test; ``getter`` pulls the field out of a row."""

    def __init__(self, field, op, value, kind, getter):
        self.field, self.op, self.value, self.kind, self.getter = field, op, value, kind, getter
        if op == "REGEXP":
            try:
                # MySQL REGEXP on the default collation ignores case.
                self._regex = re.compile(str(value), re.IGNORECASE)
            except re.error as exc:
                raise ApiError(400, "INVALID_INPUT_DATA", f"{field}: bad REGEXP pattern ({exc})") from None

    def matches(self, row):
        """Apply the operator the way MySQL would to this column type."""
        actual = self.getter(row)
        op = self.op
        if op == "IS":
            want_null = str(self.value).strip().upper() == "NULL"
            return (actual is None) == want_null
        if op in ("IN", "BETWEEN"):
            values = as_list(self.value)
            if op == "IN":
                return any(_compare(actual, v, self.kind) == 0 for v in values)
            if len(values) != 2:
                raise ApiError(400, "INVALID_INPUT_DATA", f"{self.field}: BETWEEN needs two values")
            low, high = _compare(actual, values[0], self.kind), _compare(actual, values[1], self.kind)
            return low is not None and high is not None and low >= 0 and high <= 0
        if op == "LIKE":
            # Yii's 'like' operator wraps the value in % and escapes wildcards: a substring test.
            return actual is not None and str(self.value).lower() in _text(actual).lower()
        if op == "REGEXP":
            return actual is not None and bool(self._regex.search(_text(actual)))
        if op == "FIND_IN_SET":
            members = actual if isinstance(actual, (list, tuple)) else _text(actual).split(",")
            return str(self.value).lower() in (_text(m).lower() for m in members)
        cmp = _compare(actual, self.value, self.kind)
        if cmp is None:
            return op in ("!=", "<>") and actual is not None
        return {"=": cmp == 0, "!=": cmp != 0, "<>": cmp != 0, ">": cmp > 0, "<": cmp < 0,
                ">=": cmp >= 0, "<=": cmp <= 0}[op]


def _text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    return "" if value is None else str(value)


def _number(value):
    try:
        return Decimal(_text(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _compare(actual, wanted, kind):
    """-1/0/1 comparing a column value with a query value, None if incomparable.

    Numeric columns compare as numbers, everything else as case-insensitive text
    (MySQL's default ``*_general_ci`` collation).
    """
    if actual is None:
        return None
    if kind in ("integer", "decimal", "boolean"):
        a, b = _number(actual), _number(wanted)
        if a is None or b is None:
            return None
    else:
        a, b = _text(actual).lower(), _text(wanted).lower()
    return (a > b) - (a < b)


def build_conditions(attributes, schema, prefix, additional=False):
    """Turn ``main_attributes``/``additional_attributes`` into a list of Conditions.

    ``schema`` maps field name → type; unknown fields are a 400 because real
    Splynx rejects searching on columns it does not have.
    """
    if attributes in (None, ""):
        return []
    if not isinstance(attributes, dict):
        raise ApiError(400, "INVALID_INPUT_DATA", f"{prefix}: must be an array")
    conditions = []
    for field, spec in attributes.items():
        if additional:
            kind = "string"
            getter = (lambda f: lambda row: (row.get("additional_attributes") or {}).get(f))(field)
        else:
            if field not in schema:
                raise ApiError(400, "INVALID_INPUT_DATA", f"{prefix}[{field}]: unknown attribute")
            kind = schema[field]
            getter = (lambda f: lambda row: row.get(f))(field)
        if isinstance(spec, dict):
            parts = as_list(spec)
            if len(parts) < 2:
                raise ApiError(400, "INVALID_INPUT_DATA", f"{prefix}[{field}]: expected [operator, value]")
            op = str(parts[0]).strip().upper()
            if op not in OPERATORS:
                raise ApiError(400, "INVALID_INPUT_DATA", f"{prefix}[{field}]: unknown operator {parts[0]}")
            conditions.append(Condition(field, op, parts[1], kind, getter))
        else:
            conditions.append(Condition(field, "=", spec, kind, getter))
    return conditions


def parse_paging(params):
    """``limit``/``offset`` as ints (None when absent)."""
    out = []
    for name in ("limit", "offset"):
        raw = params.get(name)
        if raw in (None, ""):
            out.append(None)
            continue
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: must be an integer") from None
        if value < 0:
            raise ApiError(400, "INVALID_INPUT_DATA", f"{name}: must not be negative")
        out.append(value)
    return tuple(out)


def sort_rows(rows, order, schema):
    """Apply ``order[field]=ASC|DESC`` (in the order given); default is id ASC."""
    if order in (None, ""):
        return sorted(rows, key=lambda r: r.get("id") or 0)
    if not isinstance(order, dict):
        raise ApiError(400, "INVALID_INPUT_DATA", "order: must be an array")
    rows = sorted(rows, key=lambda r: r.get("id") or 0)
    for field, direction in reversed(list(order.items())):
        if field not in schema:
            raise ApiError(400, "INVALID_INPUT_DATA", f"order[{field}]: unknown attribute")
        direction = str(direction).upper()
        if direction not in ("ASC", "DESC"):
            raise ApiError(400, "INVALID_INPUT_DATA", f"order[{field}]: must be ASC or DESC")
        numeric = schema[field] in ("integer", "decimal", "boolean")
        rows.sort(key=lambda r: _sort_key(r.get(field), numeric), reverse=direction == "DESC")
    return rows


def _sort_key(value, numeric):
    if value is None:
        return (0, 0 if numeric else "")
    if numeric:
        return (1, _number(value) or 0)
    return (1, _text(value).lower())
