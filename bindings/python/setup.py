"""Refuses to build the package without the core component in it."""

from pathlib import Path

from setuptools import setup

component = Path(__file__).resolve().parent / "src" / "polytel" / "polytel.wasm"
if not component.is_file():
    raise SystemExit(
        f"polytel: the core component {component} is missing; run bindings/python/build.sh "
        "(it builds the Rust core and copies the component there) before building or installing this package."
    )
setup()
