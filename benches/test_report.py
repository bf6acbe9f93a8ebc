#!/usr/bin/env python3
"""benches/report.py against a criterion directory written here: ratios, bounds, verdicts, and
targets whose benchmarks did not run. (stdlib only; `make bench-smoke` runs it.)"""

import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402


def write(root: Path, full_id: str, median_ns: float) -> None:
    directory = root.joinpath(*full_id.replace("/", "_", 1).split("/"), "new")
    directory.mkdir(parents=True)
    (directory / "benchmark.json").write_text(json.dumps({"full_id": full_id}))
    (directory / "estimates.json").write_text(json.dumps({"median": {"point_estimate": median_ns}}))


class ReportTest(unittest.TestCase):
    def test_ratios_bounds_and_missing(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write(root, "cell/check_at/cellgate_gcra", 12.0)
            write(root, "cell/check_at/governor_direct_step_clock", 10.0)
            write(root, "cell/check_at_denied/cellgate_gcra", 6.0)
            write(root, "keyed/new_key/cellgate/1000", 200.0)
            write(root, "keyed/new_key/governor_dashmap_step_clock/1000", 250.0)
            lines = report.report(report.medians(root))
        table = "\n".join(lines)
        self.assertIn("| cell check, admitted | 12.0 ns | 10.0 ns | 1.20× | ≤ 1.3× | met |", table)
        self.assertIn("| cell check, denied | 6.0 ns | | | ≤ 5 ns | missed |", table)
        self.assertIn("| keyed, new key, 1,000 keys | 200.0 ns | 250.0 ns | 0.80× | ≤ 1× | met |", table)
        self.assertIn("not run (cell/check_clock/cellgate_gcra_monotonic)", table)

    def test_nothing_found_is_an_error(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            sys.argv = ["report.py", tmp]
            self.assertEqual(report.main(), 2)


if __name__ == "__main__":
    unittest.main()
