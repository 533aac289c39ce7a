"""mrseq: which prostate mpMRI sequence is this series, from the pixels alone."""

__version__ = "0.1.0"
