"""The built wheel, installed (not editable) into a fresh virtual environment, migrates and
serves from a folder that is not the checkout.

On a SQLite file of its own only (database_free): what is tested is the package, and the
migrations it carries run on PostgreSQL in the PostgreSQL pass's own set-up.

The wheel is built from a copy of the sources, so the checkout gets no `build/` folder; its
dependencies come from `requirements/run.lock` (with their hashes) through uv, whose cache
makes the install take seconds. Nothing of the checkout is importable from the new
environment: the test runs it with a clean environment, in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, skip_or_fail
from tests.deploy.helpers import free_port_run, stop_group, wait_for

pytestmark = pytest.mark.database_free

INSTALL_SECONDS = 300
START_SECONDS = 60


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        skip_or_fail("uv is not installed (it comes with the dev tools: make .venv/.dev-installed)")
    assert found is not None
    return found


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_SECONDS, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of the sources (what a clean clone builds), in `tmp/dist`."""
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(PROJECT_ROOT / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    # The dev environment's setuptools (locked in requirements/dev.lock) builds it.
    argv = [_uv(), "build", "--quiet", "--wheel", "--no-build-isolation", "--python"]
    _run([*argv, sys.executable, "--out-dir", str(tmp / "dist"), str(source)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("todoscale-*.whl")
    return wheel


def _install(tmp: Path, wheel: Path) -> Path:
    """A new virtual environment with the locked dependencies and the wheel; its bin folder."""
    venv = tmp / "venv"
    _run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=tmp)
    python = str(venv / "bin" / "python")
    lock = str(PROJECT_ROOT / "requirements" / "run.lock")
    install = [_uv(), "pip", "install", "--quiet", "--python", python]
    _run([*install, "--require-hashes", "-r", lock], cwd=tmp)
    _run([*install, "--no-deps", str(wheel)], cwd=tmp)
    return venv / "bin"


def _clean_env(**values: str) -> dict[str, str]:
    """This process's environment without anything naming the checkout or the suite's app."""
    dropped = ("TODOSCALE_", "PYTHON", "VIRTUAL_ENV", "COV_", "COVERAGE_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    return {**env, **values}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The installed wheel's bin folder, a working folder outside the checkout, and the
    environment its commands run with: the database (SQLite in the instance folder) migrated
    by the installed `todoscale db upgrade`."""
    tmp = tmp_path_factory.mktemp("wheel")
    bin_dir = _install(tmp, _build_wheel(tmp))
    work = tmp / "work"
    work.mkdir()
    database_url = f"sqlite:///{work / 'instance' / 'todoscale.db'}"
    env = _clean_env(TODOSCALE_DATABASE_URL=database_url, TODOSCALE_WORKERS="1")
    output = _run([str(bin_dir / "todoscale"), "db", "upgrade"], cwd=work, env=env)
    heads = _run([str(bin_dir / "todoscale"), "db", "current"], cwd=work, env=env)
    assert "(head)" in heads, output + heads
    return bin_dir, work, env


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    bin_dir, work, _ = installed

    where = _run(
        [str(bin_dir / "python"), "-c", "import todoscale; print(todoscale.__file__)"],
        cwd=work,
        env=_clean_env(),
    )

    assert Path(where.strip()).is_relative_to(bin_dir.parent)
    assert not Path(where.strip()).is_relative_to(PROJECT_ROOT)


@pytest.mark.parametrize(
    "serve", [["--server", "granian"], ["--server", "gunicorn"], ["--socketio"]], ids=str
)
def test_the_installed_wheel_migrates_and_serves(installed, serve):
    bin_dir, work, migrated = installed
    port = free_port_run(1)
    env = {**migrated, "TODOSCALE_BIND": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [str(bin_dir / "todoscale"), "serve", *serve],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc, START_SECONDS)
        status, page = _get(f"http://127.0.0.1:{port}/login")
        assert status == 200
        # The page's templates, translations and static files all come from the wheel.
        stylesheet = page.split('href="/static/', 1)[1].split('"', 1)[0]
        assert _get(f"http://127.0.0.1:{port}/static/{stylesheet}")[0] == 200
        assert _get(f"http://127.0.0.1:{port}/api/v1/openapi.json")[0] == 200
        if "--socketio" in serve:
            assert _get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling")[0] == 200
    finally:
        stop_group(proc)


def test_the_installed_wheel_renders_the_nginx_site_with_its_own_static_files(installed):
    bin_dir, work, _ = installed
    script = (
        "from todoscale.deploy import nginx; "
        "print(nginx.STATIC_DIR); print(nginx.render(nginx.Site(static_dir=str(nginx.STATIC_DIR))))"
    )

    output = _run([str(bin_dir / "python"), "-c", script], cwd=work, env=_clean_env())

    static_dir = Path(output.splitlines()[0])
    assert static_dir.is_relative_to(bin_dir.parent) and (static_dir / "app.css").is_file()
    assert f"{static_dir}" in output.split("\n", 1)[1]
