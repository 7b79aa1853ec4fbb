"""Bodies checked against Go structs as encoding/json does (errors as Docker 20.10 sent them)."""

import pytest

from shoal.engineapi.go_fields import CONFIG_SPEC, SECRET_SPEC, decode_struct
from shoal.errors import InvalidArgument


def test_fields_match_in_any_case_and_unknown_ones_stay():
    body = {"name": "s", "DATA": "eHg=", "driver": {"nAmE": "x"}, "Extra": 1}
    assert decode_struct(body, SECRET_SPEC) == {
        "Name": "s",
        "Data": "eHg=",
        "Driver": {"Name": "x"},
        "Extra": 1,
    }


@pytest.mark.parametrize(
    ("body", "struct", "message"),
    [
        ([], SECRET_SPEC, "json: cannot unmarshal array into Go value of type swarm.SecretSpec"),
        (
            {"Name": True},
            SECRET_SPEC,
            "json: cannot unmarshal bool into Go struct field SecretSpec.Name of type string",
        ),
        (
            {"Templating": {"Options": {"a": True}}},
            SECRET_SPEC,
            "json: cannot unmarshal bool into Go struct field Driver.Templating.Options of type "
            "string",
        ),
        (
            {"Labels": "x"},
            CONFIG_SPEC,
            "json: cannot unmarshal string into Go struct field ConfigSpec.Labels of type "
            "map[string]string",
        ),
        ({"Data": "!!"}, CONFIG_SPEC, "illegal base64 data at input byte 0"),
    ],
)
def test_type_errors_in_gos_words(body, struct, message):
    with pytest.raises(InvalidArgument) as err:
        decode_struct(body, struct)
    assert str(err.value) == message
