"""Variable substitution as Docker's CLI does it (cli/compose/template), quirks included."""

import pytest

from shoal.compose.errors import ComposeError
from shoal.compose.interpolation import InvalidTemplate, interpolate, substitute

ENV = {"SET": "value", "EMPTY": "", "N": "3"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a${SET}b", "avalueb"),
        ("$UNSET", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${SET:-dflt}", "value"),
        ("${SET?err}", "value"),
        ("${EMPTY?err}", ""),
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("100%", "100%"),
        ("${UNSET:-a b c}", "a b c"),
        # Docker's pattern lets an unbraced name carry a default too
        ("$UNSET-x", "x"),
        ("${set}", ""),  # names are case-sensitive when looked up
    ],
)
def test_substitute(template, expected):
    assert substitute(template, ENV) == expected


@pytest.mark.parametrize(
    ("template", "quoted"),
    [
        ("${UNSET?need it}", "required variable UNSET is missing a value: need it"),
        ("${EMPTY:?need it}", "required variable EMPTY is missing a value: need it"),
        ("${UNSET:?}", "required variable UNSET is missing a value: "),
        ("${SET", "${SET"),
        ("$ x", "$ x"),
        ("${}", "${}"),
    ],
)
def test_invalid_templates(template, quoted):
    with pytest.raises(InvalidTemplate) as error:
        substitute(template, ENV)
    assert error.value.template == quoted


def test_errors_name_the_path_as_docker_does():
    with pytest.raises(ComposeError) as error:
        interpolate({"services": {"web": {"environment": ["A=${X?}"]}}}, {}, "")
    assert str(error.value) == (
        "invalid interpolation format for services.web.environment.[]: "
        '"required variable X is missing a value: "; you may need to escape any $ with another $'
    )


def test_a_variable_at_a_typed_path_is_cast():
    config = {"services": {"web": {"deploy": {"replicas": "${N}"}, "read_only": "${T}"}}}
    out = interpolate(config, {"N": "3", "T": "yes"}, "")
    assert out["services"]["web"] == {"deploy": {"replicas": 3}, "read_only": True}


def test_a_string_without_a_variable_is_not_cast():
    config = {"services": {"web": {"deploy": {"replicas": "2"}}}}
    assert interpolate(config, {}, "") == config


def test_a_cast_that_fails_is_docker_s_error():
    with pytest.raises(ComposeError) as error:
        interpolate({"services": {"web": {"deploy": {"replicas": "${N}"}}}}, {"N": "x"}, "")
    assert str(error.value) == (
        "error while interpolating services.web.deploy.replicas: failed to cast to expected "
        'type: strconv.Atoi: parsing "x": invalid syntax'
    )
