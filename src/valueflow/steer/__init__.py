"""Steering: prompt regimes that push a model's values to a target level, and the runner.

Regimes (see :mod:`valueflow.steer._prompts` for the wording, all ours):

* ``intensity``: one value at a level -2..2 (0 is explicitly neutral);
* ``user_text``: exemplar texts from the VIDB bin of the level, as if written by the user;
* ``pairs`` and ``latin_square``: several values at once (the five-value Latin square gives
  each value each level once);
* ``profile``: the values of a profile (e.g. from ``valueflow profile``) at their levels,
  or (``profile.style: prompt``) as one profile prompt (:func:`profile_prompt`).

Beside the regimes: :func:`study_opinionqa` measures how closely a model's answers to
OpinionQA survey questions match demographic groups', with and without each group's
profile prompt.

The unsteered default (the query with no value instruction) is always run: it is the
baseline of every shift Δ.

Example:
    >>> from valueflow.steer import load_config, run_steering, load_results
    >>> cfg = load_config("steer-small.yaml")            # doctest: +SKIP
    >>> run_steering(cfg, workspace)                     # doctest: +SKIP
    >>> results = load_results(workspace)                # doctest: +SKIP
"""

from valueflow.steer._activation import (
    SteeringVector,
    steering,
    train_steering_vector,
)
from valueflow.steer._calibrate import DoseResponse, fit_dose_response
from valueflow.steer._config import (
    LEVELS,
    REGIMES,
    GenerationSettings,
    JudgeSettings,
    LatinSquareSettings,
    ModelSettings,
    PairSettings,
    ProfileSettings,
    QuerySettings,
    SteeringConfig,
    UserTextSettings,
    apply_overrides,
    load_config,
)
from valueflow.steer._design import (
    LEVEL_BINS,
    Condition,
    ExemplarPool,
    Query,
    build_conditions,
    default_queries,
    intensity_to_level,
    latin_square,
    load_profile_targets,
    load_profile_values,
    load_queries,
)
from valueflow.steer._opinionqa import (
    OpinionQAResult,
    OpinionQASettings,
    plot_opinionqa,
    study_opinionqa,
)
from valueflow.steer._opinionqa_data import (
    OpinionQAData,
    SurveyQuestion,
    group_file_stem,
    load_opinionqa,
    split_groups,
)
from valueflow.steer._opinionqa_metrics import (
    alignment,
    bootstrap_mean,
    letter_distribution,
    parse_letter,
    wasserstein_1d,
)
from valueflow.steer._opinionqa_profiles import load_group_profiles, resolve_groups
from valueflow.steer._profile_prompt import (
    PRIORITY_LABELS,
    PriorityBins,
    profile_prompt,
    profile_prompts,
    profile_values,
)
from valueflow.steer._prompts import build_messages, instruction_text, value_instruction
from valueflow.steer._refusal import REFUSAL_PHRASES, is_refusal
from valueflow.steer._runner import Plan, Trial, load_results, plan_steering, run_steering
from valueflow.steer._store import SteerStore
from valueflow.steer._target import (
    Calibration,
    QueryOutcome,
    TargetResult,
    TargetSettings,
    load_target_result,
    load_target_run,
    parse_targets,
    steer_to_target,
    stored_calibrations,
    target_runs,
)

__all__ = [
    "LEVELS",
    "LEVEL_BINS",
    "PRIORITY_LABELS",
    "REFUSAL_PHRASES",
    "REGIMES",
    "Calibration",
    "Condition",
    "DoseResponse",
    "ExemplarPool",
    "GenerationSettings",
    "JudgeSettings",
    "LatinSquareSettings",
    "ModelSettings",
    "OpinionQAData",
    "OpinionQAResult",
    "OpinionQASettings",
    "PairSettings",
    "Plan",
    "PriorityBins",
    "ProfileSettings",
    "Query",
    "QueryOutcome",
    "QuerySettings",
    "SteerStore",
    "SteeringConfig",
    "SteeringVector",
    "SurveyQuestion",
    "TargetResult",
    "TargetSettings",
    "Trial",
    "UserTextSettings",
    "alignment",
    "apply_overrides",
    "bootstrap_mean",
    "build_conditions",
    "build_messages",
    "default_queries",
    "example_config_path",
    "fit_dose_response",
    "group_file_stem",
    "instruction_text",
    "intensity_to_level",
    "is_refusal",
    "latin_square",
    "letter_distribution",
    "load_config",
    "load_group_profiles",
    "load_opinionqa",
    "load_profile_targets",
    "load_profile_values",
    "load_queries",
    "load_results",
    "load_target_result",
    "load_target_run",
    "parse_letter",
    "parse_targets",
    "plan_steering",
    "plot_opinionqa",
    "profile_prompt",
    "profile_prompts",
    "profile_values",
    "resolve_groups",
    "run_steering",
    "split_groups",
    "steer_to_target",
    "steering",
    "stored_calibrations",
    "study_opinionqa",
    "target_runs",
    "train_steering_vector",
    "value_instruction",
    "wasserstein_1d",
]


def example_config_path(name: str = "small") -> str:
    """Path of a bundled example config (``small``)."""
    from importlib import resources

    return str(resources.files("valueflow.steer").joinpath(f"data/examples/{name}.yaml"))
