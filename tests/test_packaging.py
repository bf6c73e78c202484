"""What a package index and a downstream packager see: the metadata, what the sdist carries,
and the data files the wheel must carry."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOME = "https://github.com/nanoedit/nanoedit"


def test_installed_metadata_has_license_urls_and_classifiers() -> None:
    meta = importlib.metadata.metadata("nanoedit")
    assert meta["License-Expression"] == "MIT"
    # A license expression replaces the free-text field; PyPI rejects a file with both.
    assert "License" not in meta
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta.get_all("Project-URL") == [
        f"Homepage, {HOME}",
        f"Repository, {HOME}",
        f"Issues, {HOME}/issues",
        f"Changelog, {HOME}/blob/main/CHANGELOG.md",
    ]
    assert meta["Requires-Python"] == ">=3.11"
    assert meta.get_all("Classifier") == [
        "Development Status :: 3 - Alpha",
        "Environment :: Console",
        "Intended Audience :: Developers",
        "Operating System :: POSIX",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: 3.14",
        "Topic :: Multimedia :: Graphics",
        "Typing :: Typed",
    ]


def test_license_file_is_mit_for_the_nanoedit_developers() -> None:
    lines = (ROOT / "LICENSE").read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["MIT License", "", "Copyright (c) 2026 The nanoedit developers"]


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder``, relative to the project root, without bytecode."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def build_backend_missing() -> str | None:
    """Why an offline sdist build cannot run here, or None when it can."""
    for name, least in (("build", (1,)), ("setuptools", (77,))):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return f"{name} is not installed; pip install -e '.[test]'"
        if tuple(int(part) for part in version.split(".")[: len(least)]) < least:
            return f"{name} {version} is too old; pip install -e '.[test]'"
    return None


def build_copy(out: Path, kind: str, *, timeout: float) -> None:
    """Build the project (``--sdist`` or ``--wheel``) into ``out`` from a copy, so the build's
    egg-info never lands in the working tree; no isolation, so no package index is needed."""
    source = out / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "*.egg-info", "__pycache__", ".*_cache", "build", "dist"
        ),
    )
    command = [sys.executable, "-m", "build", kind, "--no-isolation", "--outdir"]
    built = subprocess.run(
        [*command, str(out), str(source)], capture_output=True, text=True, timeout=timeout
    )
    assert built.returncode == 0, built.stderr


@pytest.mark.sdist
def test_sdist_carries_what_its_own_tests_need(tmp_path: Path) -> None:
    reason = build_backend_missing()
    if reason:
        pytest.skip(reason)
    build_copy(tmp_path, "--sdist", timeout=60)
    version = importlib.metadata.version("nanoedit")
    with tarfile.open(tmp_path / f"nanoedit-{version}.tar.gz") as sdist:
        top = f"nanoedit-{version}/"
        carried = {
            member.name.removeprefix(top)
            for member in sdist.getmembers()
            if member.isfile() and not member.name.startswith(f"{top}nanoedit.egg-info/")
        }
    expected = (
        {"PKG-INFO", "setup.cfg", "pyproject.toml", "MANIFEST.in"}
        | {"README.md", "LICENSE", "CHANGELOG.md"}
        | files_under(ROOT / "nanoedit")
        | files_under(ROOT / "tests")
        | files_under(ROOT / "completions")
    )
    assert {"tests/conftest.py", "tests/readme_help.py"} <= expected
    assert carried == expected, (
        f"the sdist lacks {sorted(expected - carried)} and has extra {sorted(carried - expected)};"
        " edit MANIFEST.in"
    )


@pytest.mark.sdist
def test_the_wheel_carries_the_skill_and_every_schema(tmp_path: Path) -> None:
    # nanoedit skill and nanoedit schema read them from the installed package: a wheel that
    # left them out would fail there alone, never in a checkout.
    reason = build_backend_missing()
    if reason:
        pytest.skip(reason)
    build_copy(tmp_path, "--wheel", timeout=120)
    [wheel] = tmp_path.glob("nanoedit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        carried = set(archive.namelist())
    shipped = {"nanoedit/SKILL.md"} | files_under(ROOT / "nanoedit" / "describe" / "schemas")
    assert len(shipped) > 5
    assert shipped <= carried, sorted(shipped - carried)
