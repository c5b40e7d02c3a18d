"""The example configurations in the project's deploy/ folder, rendered from the package.

`make deploy-files` writes them; tests/deploy/test_examples.py keeps them equal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from todoscale.deploy import nginx, programs

# Each file, by its path under deploy/, and what renders it.
EXAMPLES: dict[str, Callable[[], str]] = {
    "nginx/todoscale.conf": lambda: nginx.render(nginx.Site()),
    "nginx/compose.conf": lambda: nginx.render(nginx.COMPOSE_SITE),
    "supervisor/todoscale.conf": programs.example,
}


def write(deploy: Path) -> list[Path]:
    """Write every example under the folder `deploy`; return the files written."""
    written = []
    for name, rendered in EXAMPLES.items():
        path = deploy / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered())
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy")):
        print(f"wrote {path}")
