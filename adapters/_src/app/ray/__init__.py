"""``embed --engine ray``: the single-process embed as a Ray Data job (the optional
``distributed`` extra), its sharded output directory and reading that back.

Outside this folder only the ``embed`` command (for ``--engine ray``) and
`store.load_embeddings` (for a directory) import it, both when they need it.
"""
