"""The shared searcher suite, run for every registered searcher."""

import pytest

from oneshot.search import available_searchers
from oneshot.search.testing import SearcherTestSuite


@pytest.fixture(params=available_searchers())
def searcher_name(request):
    return request.param


class TestRegisteredSearchers(SearcherTestSuite):
    pass


def test_the_suite_covers_the_builtin_searchers():
    assert {"path-priority", "evolution", "random", "path-priority-verify"} <= set(available_searchers())
