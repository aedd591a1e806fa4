"""Failed measurements: raise values far below the rest before a model is fitted to them.

A network that does not train (a cell whose every path is cut, a diverged run) measures at chance
level, tens of points below the others. Fitted as they are, one or two such values set the scale of
a whole model: they dominate its squared errors, its standardisation and any noise estimate read
off the spread of the measurements, while what a searcher needs is the order near the top.
:func:`clip_low_outliers` therefore raises every value more than ``mads`` robust standard
deviations below the median (the robust standard deviation is 1.4826 times the median absolute
deviation) to that bound: the architecture stays known as bad, without deciding the fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["clip_low_outliers"]

_MAD_TO_STD = 1.4826
_MIN_VALUES = 5


def clip_low_outliers(values: np.ndarray | Sequence[float], *, mads: float | None = 6.0) -> np.ndarray:
    """``values`` (``(n,)``) with those below ``median - mads * 1.4826 * MAD`` raised to that bound.

    Returns a new float array; unchanged when ``mads`` is ``None``, with fewer than 5 values, or when
    the median absolute deviation is 0 (more than half of the values equal).
    """
    y = np.array(values, dtype=float)
    if mads is None or len(y) < _MIN_VALUES:
        return y
    median = float(np.median(y))
    spread = _MAD_TO_STD * float(np.median(np.abs(y - median)))
    if spread <= 0.0:
        return y
    return np.maximum(y, median - mads * spread)
