"""Vector helpers shared by scoring, calibration and clustering."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, dtype: type | None = np.float64) -> np.ndarray:
    """``x`` scaled to unit length along its last axis (zero vectors stay zero), as ``dtype``
    (None: the input's own floating type)."""
    x = np.asarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
