"""oneshot_panoptic: the Auto-Panoptic plug-in for oneshot (task ``panoptic``)."""

from oneshot_panoptic.structures import (
    IGNORE_LABEL,
    PanopticMetadata,
    PanopticSegmentation,
    SegmentInfo,
)

__all__ = ["IGNORE_LABEL", "PanopticMetadata", "PanopticSegmentation", "SegmentInfo"]

# Each part adds its public names below, in its own section.
# --- pq / data (issue 3) ---
# --- model (issue 5) ---
# --- task (issue 6) ---
