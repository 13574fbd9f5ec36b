"""One builder per source: ``build_<source>(spec) -> Adapter``."""
