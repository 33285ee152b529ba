"""Names Kubernetes accepts (DNS-1123 labels), unique and stable for any step name."""

from __future__ import annotations

import hashlib
import re

from magnus import defaults

_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")
_MAX = 63


def dns_name(name: str) -> str:
    """A DNS-1123 label for ``name``: lower case, digits and ``-``, at most 63 characters.

    Names that are already valid are kept; others (spaces, dots, upper case, too long) get a
    short hash of the original appended, so two different steps never share a name and the same
    step always gets the same one.
    """
    readable = name.replace(defaults.MAP_PLACEHOLDER, "map")
    label = _NOT_ALLOWED.sub("-", readable.lower()).strip("-") or "step"
    if label == name and len(label) <= _MAX and label[0].isalpha():
        return label
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{label[: _MAX - 10].rstrip('-')}-{digest}" if label[0].isalpha() else f"s-{label[: _MAX - 12]}-{digest}"
