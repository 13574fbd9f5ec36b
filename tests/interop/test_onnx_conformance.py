"""The ONNX backend node tests through the ONNX -> JAX lowering (issue 25 item 3).

The full table (every node test of every claimed op type) is ``python -m
benchmarks.onnx_conformance``, committed as ``benchmarks/results/onnx_conformance.md``. Here,
within the test budget: the first `PER_OP` node tests (by name, ``_expanded`` function bodies
left to the table) of every op type the table claims, each of which must pass or be refused
with a reason, never crash or mismatch; and the committed table must be of this table and meet
the goal.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from benchmarks._onnx_node_tests import node_tests, ops_under_test, opset, run_case
from benchmarks.onnx_conformance import GOAL, RESULTS
from benchmarks.onnx_conformance_exclusions import EXCLUDED
from interop.onnx_lowering import OPS

pytestmark = pytest.mark.slow
#: node tests run per claimed op type here (the committed table runs all of them)
PER_OP = 2


def test_node_tests_of_every_claimed_op_pass_or_are_refused() -> None:
    under = ops_under_test()
    picked: dict[str, list] = collections.defaultdict(list)
    for case in sorted(node_tests(), key=lambda c: c.name):
        op = under[case.name]
        if op in OPS and opset(case) >= 13 and not case.name.endswith("_expanded"):
            if len(picked[op]) < PER_OP:
                picked[op].append(case)
    outcomes: collections.Counter = collections.Counter()
    bad = []
    for op, cases in picked.items():
        for case in cases:
            outcome, detail = run_case(case)
            outcomes[outcome] += 1
            if outcome in ("mismatch", "crash"):
                bad.append(f"{case.name} ({op}): {outcome}: {detail}")
    assert not bad, "\n".join(bad)
    assert outcomes["passed"] >= GOAL * sum(outcomes[k] for k in ("passed", "refused"))


def test_the_committed_table_is_of_this_table_and_meets_the_goal() -> None:
    table = json.loads((RESULTS / "onnx_conformance.json").read_text())
    assert table["claimed"] == sorted(OPS), "re-run python -m benchmarks.onnx_conformance"
    assert table["totals"]["mismatch"] == 0 and table["totals"]["crash"] == 0
    assert table["pass_rate"] >= GOAL


def test_every_exclusion_names_a_node_test_and_a_reason() -> None:
    names = {c.name for c in node_tests()}
    for name, reason in EXCLUDED.items():
        assert name in names, name
        assert len(reason.split()) >= 5, name
    assert Path(RESULTS / "onnx_conformance.md").is_file()
