"""Splynx search, order and paging parameters (splynx §1.4).

Splynx reads them the way PHP's ``http_build_query`` writes nested arrays::

    main_attributes[status]=not_paid
    main_attributes[total][0]=>=&main_attributes[total][1]=10.00
    main_attributes[id][0]=IN&main_attributes[id][1][0]=1&main_attributes[id][1][1]=2
    order[id]=ASC&limit=100&offset=200

Callers write filters in Python instead::

    {"customer_id": 42, "status": "not_paid", "total": (">=", "10.00"),
     "id": ("IN", [1, 2]), "date_created": ("BETWEEN", (date(2024, 1, 1), date(2024, 1, 31)))}

A plain value means equality, an ``(OPERATOR, value)`` tuple picks an operator, a
list or set is shorthand for ``IN``.
"""

from __future__ import annotations

import datetime
from typing import Any, List, Mapping, Optional, Tuple

#: The operators Splynx accepts in ``main_attributes[f][0]`` (splynx §1.4).
OPERATORS = frozenset(
    {"=", "!=", ">=", "<=", ">", "<", "<>", "IS", "REGEXP", "BETWEEN", "LIKE", "IN", "FIND_IN_SET"}
)
#: Operators whose value is an array (``[1][0]=..&[1][1]=..``).
_ARRAY_OPERATORS = frozenset({"IN", "BETWEEN"})


def format_value(value) -> str:
    """Write one value as PHP's ``http_build_query`` would send it.

    ``True``/``False`` become ``1``/``0`` (PHP's cast), dates ``YYYY-MM-DD``,
    datetimes ``YYYY-MM-DD HH:MM:SS`` (splynx §1.1). ``None`` is refused: PHP
    would drop it, silently widening the search.
    """
    if value is None:
        raise ValueError("a search value cannot be None")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _condition(name: str, value) -> List[Tuple[str, str]]:
    """The pairs for one filtered field, ``name`` being e.g. ``main_attributes[total]``."""
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[0], str):
            raise ValueError(f"{name}: expected (OPERATOR, value), got {value!r}")
        operator, operand = value[0].strip().upper(), value[1]
    elif isinstance(value, (list, set, frozenset)):
        operator, operand = "IN", value
    else:
        return [(name, format_value(value))]
    if operator not in OPERATORS:
        raise ValueError(f"{name}: unknown operator {value[0]!r}")
    pairs = [(f"{name}[0]", operator)]
    if operator in _ARRAY_OPERATORS:
        if isinstance(operand, (str, bytes)) or not hasattr(operand, "__iter__"):
            raise ValueError(f"{name}: {operator} needs a list of values, got {operand!r}")
        operand = sorted(operand) if isinstance(operand, (set, frozenset)) else list(operand)
        if operator == "BETWEEN" and len(operand) != 2:
            raise ValueError(f"{name}: BETWEEN needs two values, got {operand!r}")
        if not operand:
            raise ValueError(f"{name}: IN needs at least one value")
        pairs += [(f"{name}[1][{i}]", format_value(v)) for i, v in enumerate(operand)]
    else:
        pairs.append((f"{name}[1]", format_value(operand)))
    return pairs


def build_params(
    *,
    main_attributes: Optional[Mapping[str, Any]] = None,
    additional_attributes: Optional[Mapping[str, Any]] = None,
    order: Optional[Mapping[str, str]] = None,
    limit: Optional[int] = None,
    offset: Optional[int] = None,
) -> List[Tuple[str, str]]:
    """Build the query parameters of a Splynx search as ``(name, value)`` pairs,
    ready for ``requests``' ``params=`` (which percent-encodes the brackets, as
    PHP does).

    ``additional_attributes`` filter custom fields by name with the same syntax
    (splynx §2.8); ``order`` maps field → ``"ASC"``/``"DESC"``.
    """
    params: List[Tuple[str, str]] = []
    for group, filters in (("main_attributes", main_attributes),
                           ("additional_attributes", additional_attributes)):
        for field_name, value in (filters or {}).items():
            params += _condition(f"{group}[{field_name}]", value)
    for field_name, direction in (order or {}).items():
        direction = str(direction).strip().upper()
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"order[{field_name}]: expected ASC or DESC, got {direction!r}")
        params.append((f"order[{field_name}]", direction))
    for name, number in (("limit", limit), ("offset", offset)):
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ValueError(f"{name} must be a non-negative int, got {number!r}")
            params.append((name, str(number)))
    return params
