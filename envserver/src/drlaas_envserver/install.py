"""Installing a requester's environment package, a wheel or a folder of wheels, with no download.

The package is what the requester stored under the task's CID: every wheel is installed with
`--no-deps --no-index`, so what runs is exactly those bytes, on the worker and on the verifier alike,
and an install never reaches a package index. The server installs one before it listens (`--package`),
and the Rust trainer runs this module's command line rather than pip itself, so both install alike:

    python -m drlaas_envserver.install PACKAGE TARGET

A sidecar runs with a read-only root filesystem and a writable /tmp, so pip writes nothing but TARGET
and its temporary files: no cache, no version check. It reads no configuration either (pip.conf,
`PIP_*` variables): a machine's `PIP_USER` or `PIP_REQUIRE_VIRTUALENV` must not change what installs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path


class InstallError(Exception):
    """The package did not install; the message says which package and why (pip's own error)."""

    def __init__(self, package: Path, reason: str) -> None:
        super().__init__(f"the environment package {package} did not install: {reason}")


def wheels(package: Path) -> list[Path]:
    """The wheels of `package`: the file itself, or every `*.whl` in the folder, sorted by name so that
    every machine installs them in the same order."""
    if package.is_file():
        if package.suffix != ".whl":
            raise InstallError(package, "it is not a wheel (*.whl)")
        return [package]
    if not package.is_dir():
        raise InstallError(package, "it does not exist")
    try:
        found = sorted(p for p in package.iterdir() if p.suffix == ".whl" and p.is_file())
    except OSError as e:
        raise InstallError(package, f"cannot read the folder: {e}") from None
    if not found:
        raise InstallError(package, "the folder holds no wheel (*.whl)")
    return found


def _pip_environment() -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    # os.devnull as the configuration file: pip then loads no configuration file at all.
    environment["PIP_CONFIG_FILE"] = os.devnull
    return environment


def install(package: Path, target: Path) -> None:
    """Installs the wheels of `package` into `target`, a folder to put on `sys.path` (an existing one
    is replaced, so nothing of an earlier install is left); raises `InstallError` if it cannot."""
    found = wheels(package)
    try:
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
    except OSError as e:
        raise InstallError(package, f"cannot replace {target}: {e}") from None
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"]
    command += ["--no-deps", "--no-index", "--no-compile", "--target", str(target), *map(str, found)]
    try:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_pip_environment(), check=False
        )
    except OSError as e:
        raise InstallError(package, f"cannot run pip: {e}") from None
    if result.returncode != 0:
        said = result.stderr.strip() or result.stdout.strip() or f"pip exited with status {result.returncode}"
        raise InstallError(package, said)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m drlaas_envserver.install",
        description="Installs a requester's environment package (no dependencies, no index) into a folder "
        "to put on the server's path. Exits 0 once installed, 1 with the reason on standard error.",
    )
    parser.add_argument("package", type=Path, metavar="PACKAGE", help="a wheel (*.whl), or a folder of wheels")
    parser.add_argument(
        "target", type=Path, metavar="TARGET", help="the folder to install into (replaced if it exists)"
    )
    args = parser.parse_args(argv)
    try:
        install(args.package, args.target)
    except InstallError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
