from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from valueflow.judges import ParseError, parse_ranking, parse_rating


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("[3, 1, 2]", (2, 0, 1)),
        ("3 > 1 > 2", (2, 0, 1)),
        ("3,1,2", (2, 0, 1)),
        ("Ranking: 3 1 2", (2, 0, 1)),
        ('{"ranking": [2, 3, 1]}', (1, 2, 0)),
        ("```json\n[1, 3, 2]\n```", (0, 2, 1)),
        ("Here is my ranking of the 3 texts: [2, 1, 3]. Text 2 is kind.", (1, 0, 2)),
        ("1. Text 3\n2. Text 1\n3. Text 2", (2, 0, 1)),
        ("(2)(3)(1)", (1, 2, 0)),
    ],
)
def test_parse_ranking_formats(answer: str, expected: tuple[int, ...]) -> None:
    assert parse_ranking(answer, 3) == expected


def test_parse_ranking_letters() -> None:
    assert parse_ranking("I think: C > A > B", 3, labels="letters") == (2, 0, 1)
    assert parse_ranking('{"ranking": ["B", "C", "A"]}', 3, labels="letters") == (1, 2, 0)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("I cannot rank these.", "names none"),
        ("[3, 1]", "leaves out text"),
        ("[1, 1, 2]", "leaves out text"),
        ("[1, 2, 3] or maybe [3, 2, 1]", "2 different rankings"),
        ("[4, 1, 2]", "leaves out text"),
    ],
)
def test_parse_ranking_rejects(answer: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_ranking(answer, 3)


_SEPARATORS = st.sampled_from([", ", ",", " > ", " ", "; ", " | ", " -> ", "\n"])
_NOISE = st.text(alphabet=st.characters(categories=["L", "Zs"], max_codepoint=0x24F),
                 max_size=30)


@given(perm=st.integers(2, 9).flatmap(lambda k: st.permutations(list(range(1, k + 1)))),
       sep=_SEPARATORS, before=_NOISE, after=_NOISE, brackets=st.booleans())
def test_parse_ranking_finds_permutation_in_noise(perm: list[int], sep: str, before: str,
                                                  after: str, brackets: bool) -> None:
    body = sep.join(str(p) for p in perm)
    answer = f"{before} [{body}] {after}" if brackets else f"{before}\n{body}\n{after}"
    assert parse_ranking(answer, len(perm)) == tuple(p - 1 for p in perm)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("7", 7.0), ("-3.5", -3.5), ("Rating: +4", 4.0), ('{"rating": -2}', -2.0),
     ("I'd say 6 out of 10", 6.0), ("6/10", 6.0), ("Score: \u22128", -8.0), ("10", 10.0),
     ("The text strongly supports the value. Rating: 9", 9.0)],
)
def test_parse_rating(answer: str, expected: float) -> None:
    assert parse_rating(answer) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("", "empty"), ("no idea", "no number"), ("between 3 and 5", "2 different numbers"),
     ("15", "outside the scale"), ('{"rating": -12}', "outside the scale")],
)
def test_parse_rating_rejects(answer: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_rating(answer)


@given(st.floats(-10, 10, allow_nan=False).map(lambda x: round(x, 2)), _NOISE)
def test_parse_rating_keyed_number_in_noise(x: float, noise: str) -> None:
    assert parse_rating(f"{noise} Rating: {x}") == pytest.approx(x)
