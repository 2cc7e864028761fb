"""Only what pyproject.toml cannot say: the cffi modules. The Winsock binding (ABI
mode, no compiler) everywhere; the io_uring extension (API mode, optional: the
install goes on without it) on Linux only."""
import sys

from setuptools import setup

modules = ["build_ffi.py:ffibuilder"]
if sys.platform.startswith("linux"):
    modules.append("build_ffi.py:uring_ffibuilder")

setup(cffi_modules=modules)
