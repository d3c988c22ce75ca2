"""The shared option groups: show, inspect and probe declare the output and model flags once, the
choices are the config's own tuples, and an existing output file is refused before the model loads."""

from __future__ import annotations

import json
import pytest
from attnviz.cli import app
from cli_runs import assert_one_error_line, invoke, run_attnviz


def _params(*path) -> dict:
    import typer.main

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {p.name: p for p in command.params}


def test_show_inspect_probe_share_the_output_and_model_groups():
    shape = ["num_layers", "num_heads", "d_model", "d_ff", "max_len", "positional", "norm_placement", "activation"]
    for path, extra in (
        (("show",), ["model", "truncate"]),
        (("inspect",), []),
        (("probe", "coref"), ["model", "truncate"]),
    ):
        params = _params(*path)
        for name in ["output", "overwrite", "tokenizer", "seed", *shape, *extra]:
            assert name in params, (path, name)
        assert params["output"].opts == ["--output", "-o"]
    assert "model" not in _params("inspect") or _params("inspect")["model"].param_type_name == "argument"


def test_cli_choices_are_the_configs_tuples():
    from attnviz.analysis.views import VIEWS
    from attnviz.cli.common import Activation, NormPlacement, Positional, View
    from attnviz.config import ACTIVATIONS, NORM_PLACEMENTS, POSITIONAL

    for enum_type, values in (
        (Positional, POSITIONAL),
        (NormPlacement, NORM_PLACEMENTS),
        (Activation, ACTIVATIONS),
        (View, VIEWS),
    ):
        assert [m.value for m in enum_type] == list(values)
    # rope was missing from the hand-written copy; now a random model can use it.
    result = invoke("show", "hi it", "--positional", "rope", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["config"]["positional"] == "rope"


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "args", [["inspect", "-t", "hi it"], ["probe", "coref", "agreement"], ["show", "hi it", "--format", "json"]]
)
def test_output_group_refuses_an_existing_file_before_loading(tmp_path, args):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    line = assert_one_error_line(run_attnviz(*args, "-o", str(target)))
    assert line == f"attnviz: error: {target} already exists; pass --overwrite to replace it"
    assert target.read_text() == "keep me"
