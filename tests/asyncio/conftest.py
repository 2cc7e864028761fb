"""Deselects the CPython asyncio tests listed in test_aio_cpython.DESELECTED
(and DESELECTED_ON for one backend), each with its reason in that file."""
from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        table = getattr(item.module, "DESELECTED", None) if getattr(item, "module", None) else None
        cls = getattr(item, "cls", None)
        if table and cls is not None:
            key = f"{getattr(cls, 'cpython_class', '')}.{item.name}"
            per_backend = getattr(item.module, "DESELECTED_ON", {}).get(getattr(cls, "backend_id", None), {})
            if key in table or key in per_backend:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
