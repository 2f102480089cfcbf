"""The integrations' shared patch marking: idempotent, recognisable, undoable."""

from __future__ import annotations

import functools

from sas_core.integrations._patching import MARK, is_patched, mark, patch_attr, unpatch_attr


class Host:
    def method(self) -> str:
        return "original"


def _wrap(original):
    @functools.wraps(original)
    def method(self) -> str:
        return "wrapped " + original(self)

    return mark(method, original)


def test_patch_once_then_undo():
    original = Host.method
    assert patch_attr(Host, "method", _wrap) is True
    assert is_patched(Host.method) and getattr(Host.method, MARK) is original
    assert patch_attr(Host, "method", _wrap) is False  # a second patch is a no-op
    assert Host().method() == "wrapped original"
    assert unpatch_attr(Host, "method") is True
    assert Host.method is original and Host().method() == "original"
    assert unpatch_attr(Host, "method") is False  # nothing left to undo
