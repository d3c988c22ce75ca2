"""Arbitrary Unicode through `attnviz show`: exit 0 or 2, never a traceback, JSON always parses."""

import json

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_runs import assert_one_error_line, invoke


nasty = st.sampled_from(
    [
        "\x00",
        "\x07",
        "\x1b[31m",
        "\r",
        "\t",
        "\u200b",
        "\u200d",
        "\u202e",
        "\u2066",
        "\ufeff",
        "שלום",
        "مرحبا",
        "👨‍👩‍👧",
        "🏳️‍🌈",
        "e\u0301",
        "개가",
        "[bold]x[/bold]",
        "%s",
        "{}",
        "\\",
        "a" * 300,
        "ab" * 40 + "!" * 30,
    ]
)
texts = st.lists(st.one_of(st.text(max_size=12), nasty), max_size=8).map(" ".join)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_show_never_crashes(text):
    # "--" ends the options, as a user quoting text that starts with "-" would write.
    table = invoke("show", "--max-len", "64", "-l", "0", "--head", "0", "--", text)
    assert table.exit_code in (0, 2), (table.exit_code, table.output)
    assert "Traceback" not in table.output
    if table.exit_code == 2:
        assert_one_error_line(table)

    as_json = invoke("show", "--max-len", "64", "--format", "json", "--", text)
    assert as_json.exit_code == table.exit_code, as_json.output
    if as_json.exit_code == 0:
        data = json.loads(as_json.stdout)
        assert data["text"] == text
        for (start, end), special in zip(data["offsets"], data["special"]):
            assert special or 0 <= start < end <= len(text)
