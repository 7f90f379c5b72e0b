from __future__ import annotations

import pytest

from valueflow.theories import ValueNode


@pytest.fixture
def value() -> ValueNode:
    """A hand-made value, so these tests do not depend on the shipped theory files."""
    return ValueNode(id="schwartz:benevolence", theory="schwartz", node="benevolence",
                     name="Benevolence", definition="Caring for the people close to you.",
                     judge_definition="Supporting texts help or protect close others; "
                     "opposing texts exploit or abandon them.")
