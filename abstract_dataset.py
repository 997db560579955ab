"""The module name plugins written for the original Syphus import: ``from abstract_dataset import AbstractDataset``."""

from syphus.dataset import AbstractDataset

__all__ = ["AbstractDataset"]
