"""acme_utils.retry."""

from __future__ import annotations

import unittest

from acme_utils import backoff_schedule, retry


class BackoffTest(unittest.TestCase):
    def test_schedule(self) -> None:
        self.assertEqual(backoff_schedule(1), ())
        self.assertEqual(backoff_schedule(4, base=1, factor=3, cap=5), (1, 3, 5))
        with self.assertRaises(ValueError):
            backoff_schedule(0)


class RetryTest(unittest.TestCase):
    def test_succeeds_after_failures_and_sleeps_the_schedule(self) -> None:
        calls: list[int] = []
        slept: list[float] = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionError("down")
            return "up"

        self.assertEqual(retry(flaky, attempts=3, sleep=slept.append), ("up", 3))
        self.assertEqual(slept, [0.1, 0.2])

    def test_gives_up_with_the_last_error(self) -> None:
        def broken() -> None:
            raise TimeoutError("still down")

        with self.assertRaisesRegex(TimeoutError, "still down"):
            retry(broken, attempts=2, sleep=lambda _: None)

    def test_other_errors_are_not_retried(self) -> None:
        calls: list[int] = []

        def wrong() -> None:
            calls.append(1)
            raise KeyError("bug")

        with self.assertRaises(KeyError):
            retry(wrong, attempts=5, sleep=lambda _: None)
        self.assertEqual(len(calls), 1)


if __name__ == "__main__":
    unittest.main()
