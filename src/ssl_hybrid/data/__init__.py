"""Readers, label selection and labeled/unlabeled batch mixing. Never imports ``ssl_hybrid.models``."""

from ssl_hybrid.data.datamodule import SemiSupervisedDataModule
from ssl_hybrid.data.sources import DatasetSplits, LabeledImages

__all__ = ["DatasetSplits", "LabeledImages", "SemiSupervisedDataModule"]
