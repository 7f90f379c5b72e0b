"""Value theories as data: Schwartz, Moral Foundations, Ross's duties and Vasak's rights.

Each theory is a hierarchy of nodes with definitions, written by us in YAML under ``data/``.
Values have canonical ids ``theory:node`` (``schwartz:benevolence``, ``mft:care_harm``);
:func:`resolve_value` also accepts bare ids, display names and aliases. The 32 evaluation
values carry a judge definition and steering phrasings for levels -2..2. Cross-theory
anchors link nodes of different theories that express one concept.

Example:
    >>> from valueflow.theories import resolve_value
    >>> resolve_value("care/harm").id
    'mft:care_harm'
"""

from valueflow.theories._model import PHRASING_LEVELS, Anchor, Theory, ValueNode, normalize_name
from valueflow.theories._registry import (
    BUILTIN_THEORIES,
    EVALUATION_VALUE_IDS,
    THEORY_FILES_ENV,
    TheoryRegistry,
    evaluation_values,
    get_registry,
    load_theory_file,
    resolve_value,
    validate_theory_file,
)

__all__ = [
    "BUILTIN_THEORIES",
    "EVALUATION_VALUE_IDS",
    "PHRASING_LEVELS",
    "THEORY_FILES_ENV",
    "Anchor",
    "Theory",
    "TheoryRegistry",
    "ValueNode",
    "evaluation_values",
    "get_registry",
    "load_theory_file",
    "normalize_name",
    "resolve_value",
    "validate_theory_file",
]
