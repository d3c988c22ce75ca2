"""Seeds, layer and head selections, focus indices and devices on the command line: a negative seed,
an empty selection, digits that are not ASCII and ranges beyond the model are each one error line
that names the whole value."""

from __future__ import annotations

import pytest
from attnviz.checkpoints import random_model
from attnviz.errors import AttnvizError
from cli_runs import assert_one_error_line, invoke, run_attnviz

SENTENCE = "The animal didn't cross the street because it was too tired."


TWIN = "The animal didn't cross the street because it was too wide."


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "args",
    [
        ["show", "hi it"],
        ["init", "never-written"],
        ["inspect"],
        ["compare", "a b", "a c"],
        ["export", "hi it", "-o", "never-written"],
        ["probe", "coref", "agreement"],
    ],
)
def test_negative_seed_is_a_usage_error(args, tmp_path):
    line = assert_one_error_line(run_attnviz(*args, "--seed", "-1", cwd=tmp_path))
    assert "Invalid value for '--seed'" in line and "0" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.subprocess
def test_negative_baseline_seed_is_a_usage_error():
    line = assert_one_error_line(run_attnviz("inspect", "--baseline", "--baseline-seed", "-5"))
    assert "Invalid value for '--baseline-seed'" in line


def test_library_refuses_negative_seed():
    with pytest.raises(AttnvizError, match="seed must be a non-negative integer, got -1"):
        random_model(seed=-1)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("flag", ["-l", "--layer", "--head"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_selection_is_an_error_not_all(flag, value):
    line = assert_one_error_line(run_attnviz("show", "hi it", flag, value))
    assert "an empty selection" in line and ("--head" if flag == "--head" else "--layer") in line


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("args", [["compare", "a b it", "a c it"], ["export", "hi it", "-o", "never-written"]])
@pytest.mark.parametrize("flag", ["-l", "--head"])
def test_empty_selection_is_an_error_in_compare_and_export_too(args, flag, tmp_path):
    line = assert_one_error_line(run_attnviz(*args, flag, "", cwd=tmp_path))
    assert "an empty selection" in line and ("head" if flag == "--head" else "layer") in line
    assert not any(tmp_path.iterdir())


def test_parse_indices_takes_ascii_digits_only_and_names_the_whole_bad_range():
    from attnviz.selection import ascii_index, parse_indices

    assert parse_indices(" 0 , 2-3 ", 4, "head") == [0, 2, 3]
    for spec in ("٠", "٣", "1-٣", "²", "０"):  # Arabic-Indic, superscript, fullwidth digits
        with pytest.raises(AttnvizError, match="use indices and ranges such as 0,2 or 1-3"):
            parse_indices(spec, 4, "layer")
    with pytest.raises(AttnvizError) as caught:
        parse_indices("0-99", 4, "head")
    assert str(caught.value) == "invalid head range 0-99: the model has 4 heads (0-3)"
    with pytest.raises(AttnvizError, match=r"^invalid layer 9{40}: the model has 2 layers \(0-1\)$"):
        parse_indices("9" * 5000, 2, "layer")
    assert [ascii_index(t) for t in ("7", " 12 ", "٣", "", "-1", "9" * 30)] == [7, 12, None, None, None, 10**18]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["show", SENTENCE, "--focus", "٣"],
            "focus word '٣' is not in the sentence; give one of its words or a token index 0-14",
        ),
        (
            ["show", SENTENCE, "--focus", "9" * 5000],
            f"focus token {'9' * 40} is out of range: the sentence has 15 tokens (0-14)",
        ),
        (["compare", SENTENCE, TWIN, "--focus", "٣"], "sentence A: focus word '٣' is not a word of the sentence"),
        (["show", SENTENCE, "-l", "9" * 5000], f"invalid layer {'9' * 40}: the model has 2 layers (0-1)"),
        (["show", SENTENCE, "-l", "٠"], "invalid layer selection '٠': use indices and ranges such as 0,2 or 1-3"),
        (["show", SENTENCE, "--head", "0-99"], "invalid head range 0-99: the model has 4 heads (0-3)"),
        (["show", SENTENCE, "--device", ""], "unknown device '': choose cpu or cuda (cuda:N for the N-th GPU)"),
        (["show", SENTENCE, "--device", "cuda:"], "unknown device 'cuda:': choose cpu or cuda"),
        (["show", SENTENCE, "--device", "cuda:٣"], "unknown device 'cuda:٣': choose cpu or cuda"),
    ],
)
def test_odd_digits_ranges_and_devices_are_one_line(args, message):
    line = assert_one_error_line(invoke(*args))
    assert line.startswith(f"attnviz: error: {message}")
