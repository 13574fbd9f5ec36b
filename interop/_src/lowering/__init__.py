"""The torch -> JAX lowering behind ``interop.lowering``: export, check, interpreter and the op
table (``ops/``); how they fit is ``README.md`` beside this file."""
