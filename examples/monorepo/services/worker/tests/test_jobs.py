"""acme_worker.jobs, with acme-core and acme-utils from their bundles."""

from __future__ import annotations

import json
import os
import unittest

from acme_worker import Job, Outcome, receipt, reindex, run

ORDER = json.dumps(
    {
        "id": "ord_7",
        "user_id": "usr_1",
        "status": "paid",
        "lines": [
            {"sku": "mug", "quantity": 2, "unit_price_cents": 1250},
            {"sku": "sticker", "quantity": 10, "unit_price_cents": 300},
        ],
    }
)


class ReceiptTest(unittest.TestCase):
    def test_receipt_lines_and_total(self) -> None:
        text = receipt(ORDER)
        self.assertEqual(text.splitlines()[0], "Receipt ord_7")
        self.assertIn("  2 x mug                      $25.00", text)
        self.assertTrue(text.endswith("total     $55.00"), text)


class RunTest(unittest.TestCase):
    def test_jobs_succeed_fail_and_retry(self) -> None:
        failures = iter([ConnectionError("smtp down")])

        def flaky(payload: str) -> str:
            error = next(failures, None)
            if error:
                raise error
            return payload.upper()

        jobs = [
            Job("j1", "receipt", ORDER),
            Job("j2", "reindex", "Acme T-Shirt (acme)"),
            Job("j3", "flaky", "ok"),
            Job("j4", "receipt", "{not json"),
            Job("j5", "fax", ""),
        ]
        handlers = {"receipt": receipt, "reindex": reindex, "flaky": flaky}
        results = {r.job_id: r for r in run(jobs, handlers)}
        self.assertEqual(results["j1"].outcome, Outcome.DONE)
        self.assertEqual(results["j2"].output, "acme shirt t")
        self.assertEqual((results["j3"].outcome, results["j3"].tries), (Outcome.DONE, 2))
        self.assertEqual(results["j4"].outcome, Outcome.FAILED)
        self.assertIn("JSONDecodeError", results["j4"].output)
        self.assertEqual(results["j5"].output, "no handler for 'fax'")

    def test_gives_up_after_the_last_attempt(self) -> None:
        def down(payload: str) -> str:
            raise TimeoutError("queue unreachable")

        slept: list[float] = []
        [result] = run([Job("j", "down", "")], {"down": down}, attempts=3, sleep=slept.append)
        self.assertEqual((result.outcome, result.tries), (Outcome.FAILED, 3))
        self.assertEqual(slept, [0.1, 0.2])


class DemoFailureTest(unittest.TestCase):
    """EXAMPLE_FAIL=worker (make.toml lists it in env_inputs) fails this test on purpose."""

    def test_example_fail_switch(self) -> None:
        wanted = os.environ.get("EXAMPLE_FAIL", "").split(",")
        if "worker" in wanted:
            self.fail("EXAMPLE_FAIL=worker: failing on purpose; unset EXAMPLE_FAIL to pass")


if __name__ == "__main__":
    unittest.main()
