import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot_panoptic.evaluation.semantic import SemanticConfusion
from oneshot_panoptic.structures import IGNORE_LABEL
from tests.oneshot.metrics import _confusion_cases as cases

NAMES = ("sem_miou", "sem_acc")


def test_hand_computed_example():
    cases.check_hand_computed(SemanticConfusion, NAMES, ignore=IGNORE_LABEL)


def test_logits_are_reduced_by_argmax_and_sizes_must_match():
    logits = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]])  # (C=2, H=1, W=2): predicts [1, 0]
    cases.check_scores_and_sizes(SemanticConfusion, NAMES, logits, torch.tensor([[1, 0]]))


def test_empty_confusion_reports_zero():
    cases.check_empty(SemanticConfusion, NAMES)


def test_ignores_the_panoptic_ignore_label_by_default():
    assert SemanticConfusion(3).ignore_index == IGNORE_LABEL


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_matches_numpy_confusion(num_classes, seed):
    # one image at a time, as the evaluator does
    cases.check_matches_numpy(SemanticConfusion, num_classes, seed, (2, 7, 9), IGNORE_LABEL, per_image=True)
