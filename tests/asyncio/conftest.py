"""Deselects the CPython asyncio tests listed in test_aio_cpython.DESELECTED
(each with its reason, reported by ``pytest -rA`` as deselected)."""
from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        table = getattr(item.module, "DESELECTED", None) if getattr(item, "module", None) else None
        cls = getattr(item, "cls", None)
        if table and cls is not None:
            if f"{getattr(cls, 'cpython_class', '')}.{item.name}" in table:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
