"""Runnable benchmark suite: ratios against baselines measured interleaved in the same run."""
