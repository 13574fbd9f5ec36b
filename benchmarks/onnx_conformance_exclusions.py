"""The one reviewed list of ONNX backend node tests the conformance table does not run, and
why (test name -> reason). A reason must be checkable in the ONNX operator spec or the test
itself; "the lowering gets it wrong" is never one: such a case is a ``mismatch`` to fix, or a
use the op's registration refuses (``refuses=``), which the table counts as ``refused``."""

from __future__ import annotations

EXCLUDED: dict[str, str] = {}
