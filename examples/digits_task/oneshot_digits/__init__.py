"""An example third-party task for oneshot: one-shot NAS on scikit-learn's handwritten digits.

Installing this package (``pip install -e examples/digits_task``) registers the task ``digits``
through the ``oneshot.tasks`` entry point, so ``oneshot search --task digits`` runs it.
"""

from oneshot_digits.model import DigitsSupernet
from oneshot_digits.task import DigitsConfig, DigitsTask

__all__ = ["DigitsConfig", "DigitsSupernet", "DigitsTask"]
