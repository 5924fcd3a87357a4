"""The suite-wide secret check (tests/secret_guard.py) itself: it must catch a leak that a test ignores."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def guarded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The inner run plants another secret, so that its report (echoed here) does not trip this run's guard.
    monkeypatch.setenv("ZOO_TEST_PLANTED_SECRET", "inner-" + "secret-7d2e")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makeconftest('pytest_plugins = ["secret_guard"]\n')
    return pytester


def test_a_secret_in_an_error_that_the_test_swallows_fails_the_test(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        """
        from secret_guard import PLANTED_SECRET
        from zoo.errors import DownloadError

        def test_swallowed():
            try:
                raise DownloadError(f"http://127.0.0.1/x?token={PLANTED_SECRET}")
            except DownloadError:
                pass

        def test_clean():
            DownloadError("http://127.0.0.1/x?token=...")
        """
    )
    result = guarded.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*a planted secret was shown during call*"])


def test_a_secret_printed_to_stderr_or_logged_fails_the_test(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        """
        import logging, sys
        from secret_guard import PLANTED_SECRET

        def test_printed():
            print("retrying", PLANTED_SECRET, file=sys.stderr)

        def test_logged():
            logging.getLogger("zoo").warning("url %s", PLANTED_SECRET)
        """
    )
    result = guarded.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
