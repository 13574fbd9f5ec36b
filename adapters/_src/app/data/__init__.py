"""Datasets for ``embed`` and ``probe``: reading them (`datasets`), their images as backbone
input (`images`), and the prefetching batch loader (`loader`)."""
