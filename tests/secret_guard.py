"""A pytest plugin: no error zoo raises, and nothing a test prints or logs, may show a planted secret.

Tests plant PLANTED_SECRET as a token, password, query value or URL signature wherever a secret could leak
(hostile servers, mirrors, hub specs). Every ZooError built in the test process is recorded, and after each
phase of each test its texts and the phase's captured stdout, stderr and log are searched: a hit fails the test
whatever it asserted, so a leak is caught even by tests written for something else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from zoo.errors import ZooError

# Settable so that the guard can be tested on itself without its own run seeing the secret.
PLANTED_SECRET = os.environ.get("ZOO_TEST_PLANTED_SECRET", "zoo-planted-secret-4f9c")

_error_texts: list[str] = []
_zoo_error_init = ZooError.__init__


def _recording_init(self: ZooError, *args: object) -> None:
    _error_texts.append(" ".join(str(a) for a in args))
    _zoo_error_init(self, *args)


ZooError.__init__ = _recording_init  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Fail any test phase whose errors, output or log show PLANTED_SECRET."""
    outcome = yield
    report = outcome.get_result()
    printed = [text for name, text in report.sections if name.endswith(f" {call.when}")]
    texts = [*_error_texts, *printed]
    _error_texts.clear()
    leaks = [t for t in texts if PLANTED_SECRET in t]
    if leaks and report.outcome != "skipped":
        report.outcome = "failed"
        shown = "\n".join(line for t in leaks for line in t.splitlines() if PLANTED_SECRET in line)
        report.longrepr = f"a planted secret was shown during {call.when}:\n{shown}"
