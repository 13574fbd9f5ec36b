"""Sources: one plugin module per ``source:`` tag (``build(spec, *, device)``), looked up by
tag in ``table.py``; ``_torch.py`` is what the torch-family sources share."""
