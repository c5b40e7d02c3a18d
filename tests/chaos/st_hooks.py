"""schemathesis hooks of tests/chaos/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Registration refuses the 20,000 most common passwords, which the document states in prose:
no JSON Schema short of a 20,000-word `not: enum` can say it. Rather than excusing 422 for
every registration, bodies with such a password are not generated, so every check stays on
for the rest of the body.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from todoscale.services.rules import common_passwords


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    """False for a registration whose password is a common one."""
    operation = getattr(context, "operation", None)
    if operation is None or (operation.method.upper(), operation.path) != ("POST", "/users"):
        return True
    password = body.get("password") if isinstance(body, dict) else None
    return not (isinstance(password, str) and password.strip().lower() in common_passwords())
