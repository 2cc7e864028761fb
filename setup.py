"""Only what pyproject.toml cannot say: the cffi out-of-line (ABI mode) module."""
from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
