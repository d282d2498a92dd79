"""Registered evaluation metrics."""

from .multisports_tube_metric import MultiSportsTubeMetric

__all__ = ['MultiSportsTubeMetric']
