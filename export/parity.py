"""Numerical comparison of exported graphs against their source framework."""

from __future__ import annotations

import numpy as np

from export.errors import ShapeError
from export.repository import ParityFigure


def max_abs_diff(name: str, reference: np.ndarray, exported: np.ndarray,
                 tolerance: float) -> ParityFigure:
    """Largest absolute difference; shapes must match exactly."""
    reference = np.asarray(reference)
    exported = np.asarray(exported)
    if reference.shape != exported.shape:
        raise ShapeError(f"{name}: exported shape {exported.shape} != source {reference.shape}")
    value = float(np.max(np.abs(reference.astype(np.float64) - exported.astype(np.float64))))
    return ParityFigure(name=name, value=value, tolerance=tolerance, passed=value <= tolerance)


def min_cosine(name: str, reference: np.ndarray, exported: np.ndarray,
               tolerance: float) -> ParityFigure:
    """Smallest row-wise cosine similarity; passes when at least ``tolerance``."""
    a = np.asarray(reference, np.float64)
    b = np.asarray(exported, np.float64)
    if a.shape != b.shape:
        raise ShapeError(f"{name}: exported shape {b.shape} != source {a.shape}")
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    value = float(cos.min())
    return ParityFigure(name=name, value=value, tolerance=tolerance, passed=value >= tolerance,
                        metric="min_cosine")


def sequences_equal(name: str, reference: list[list[int]], exported: list[list[int]]
                    ) -> ParityFigure:
    """Token sequences must be identical; the figure counts the differing sequences."""
    differing = sum(1 for a, b in zip(reference, exported, strict=True) if list(a) != list(b))
    return ParityFigure(name=name, value=float(differing), tolerance=0.0, passed=differing == 0,
                        metric="differing_sequences")
