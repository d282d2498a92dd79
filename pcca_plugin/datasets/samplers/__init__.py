"""Data samplers (registered in mmaction's ``DATA_SAMPLERS``)."""

from .class_balanced_sampler import ClassBalancedSampler, class_balanced_draws, class_to_indices

__all__ = ['ClassBalancedSampler', 'class_balanced_draws', 'class_to_indices']
