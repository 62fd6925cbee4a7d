"""Runs the viewer tests and ends with one summary line; a skipped test is
printed as SKIP with its reason, and under CI=true a skip is a failure."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_viewer  # noqa: E402

suite = unittest.defaultTestLoader.loadTestsFromModule(test_viewer)
if len(sys.argv) > 1:
    suite = unittest.TestSuite(t for t in unittest.defaultTestLoader.loadTestsFromModule(test_viewer)._tests
                               for t in t if any(name in t.id() for name in sys.argv[1:]))
result = unittest.TextTestRunner(verbosity=2).run(suite)
for test, reason in result.skipped:
    print(f"SKIP {test.id()}: {reason}")
failed = len(result.failures) + len(result.errors)
passed = result.testsRun - failed - len(result.skipped)
if os.environ.get("CI") == "true" and result.skipped:
    print("CI=true: skipped browser tests count as failures")
    failed += len(result.skipped)
print(f"{passed} passed, {failed} failed, {len(result.skipped)} skipped")
sys.exit(1 if failed else 0)
