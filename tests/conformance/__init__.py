"""The backend conformance suite: one executable contract every backend passes.

See docs/semantics.md (each clause names the test that checks it) and
backends.py (how a backend is chosen, and how to add one that is not in the
registry, e.g. the Windows backend wired to a scripted lib).
"""
