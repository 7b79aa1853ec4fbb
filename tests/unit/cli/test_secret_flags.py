"""--secret/--config, labels and the --pretty reports, against what Docker's CLI does (checked
on Docker 20.10 with CLI 28)."""

import pytest

from shoal.cli.secret_config import config_pretty, parse_label, row, secret_pretty
from shoal.cli.service_flags import parse_config, parse_secret
from shoal.golang import GoError


@pytest.mark.parametrize(
    ("value", "ref"),
    [
        (
            "db-pass",
            {
                "File": {"Name": "db-pass", "UID": "0", "GID": "0", "Mode": 0o444},
                "SecretName": "db-pass",
            },
        ),
        (
            "source=db-pass,target=pw,uid=100,gid=101,mode=0400",
            {
                "File": {"Name": "pw", "UID": "100", "GID": "101", "Mode": 0o400},
                "SecretName": "db-pass",
            },
        ),
        (
            "src=db-pass,MODE=0x1ff",
            {
                "File": {"Name": "db-pass", "UID": "0", "GID": "0", "Mode": 0o777},
                "SecretName": "db-pass",
            },
        ),
    ],
)
def test_secret_references_as_docker_reads_them(value, ref):
    assert parse_secret(value) == ref


def test_a_config_targets_its_name_by_default():
    assert parse_config("app.conf") == {
        "File": {"Name": "app.conf", "UID": "0", "GID": "0", "Mode": 0o444},
        "ConfigName": "app.conf",
    }
    assert parse_config("source=app.conf,target=/etc/app.conf")["File"]["Name"] == "/etc/app.conf"


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_secret, "source=s,foo=bar", "invalid field in secret request: foo"),
        (parse_config, "source=c,foo=bar", "invalid field in config request: foo"),
        (parse_secret, "target=x", "source is required"),
        (parse_secret, "source=s,mode", "invalid field 'mode' must be a key=value pair"),
        (
            parse_secret,
            "source=s,mode=abc",
            'invalid mode specified: strconv.ParseUint: parsing "abc": invalid syntax',
        ),
        (
            parse_secret,
            "source=s,mode=077777777777",
            'invalid mode specified: strconv.ParseUint: parsing "077777777777": value out of range',
        ),
    ],
)
def test_bad_references_in_dockers_words(parse, value, message):
    with pytest.raises(GoError) as err:
        parse(value)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "invalid label '': empty name"), ("a b=c", "label 'a b' contains whitespaces")],
)
def test_labels_are_checked_as_docker_checks_them(value, message):
    with pytest.raises(GoError) as err:
        parse_label(value)
    assert str(err.value) == message
    assert parse_label("k=v w") == "k=v w"


SECRET = {
    "ID": "l2rqmewrb4jscjqpm5m7e45q8",
    "CreatedAt": "2026-12-06T06:18:16.422403494Z",
    "UpdatedAt": "2026-12-06T06:18:16.422403494Z",
    "Spec": {"Name": "secondone", "Labels": {"c": "", "a": "b"}},
}


def test_secret_pretty_as_docker_prints_it():
    # Docker 20.10, `secret inspect --pretty secondone`, verbatim.
    assert secret_pretty(SECRET) == (
        "ID:              l2rqmewrb4jscjqpm5m7e45q8\n"
        "Name:              secondone\n"
        "Labels:\n"
        " - a=b\n"
        " - c\n"
        "Driver:            \n"
        "Created at:        2026-12-06 06:18:16.422403494 +0000 utc\n"
        "Updated at:        2026-12-06 06:18:16.422403494 +0000 utc"
    )


def test_config_pretty_as_docker_prints_it():
    config = {
        "ID": "t480locv2fxc5iptoetim1zr5",
        "CreatedAt": "2026-12-06T06:20:22.233134982Z",
        "UpdatedAt": "2026-12-06T06:20:22.233134982Z",
        "Spec": {"Name": "sapi-c1", "Labels": {}, "Data": "Y29uZi1kYXRhCg=="},
    }
    assert config_pretty(config) == (
        "ID:\t\t\tt480locv2fxc5iptoetim1zr5\n"
        "Name:\t\t\tsapi-c1\n"
        "Created at:            \t2026-12-06 06:20:22.233134982 +0000 utc\n"
        "Updated at:            \t2026-12-06 06:20:22.233134982 +0000 utc\n"
        "Data:\n"
        "conf-data\n"
    )


def test_list_rows_name_what_docker_names():
    now = 1796538000 * 1_000_000_000  # some minutes after SECRET was made
    shown = row(SECRET, with_driver=True, now_ns=now)
    assert list(shown) == ["CreatedAt", "Driver", "ID", "Labels", "Name", "UpdatedAt"]
    assert shown["Labels"] == "a=b,c="
    assert shown["CreatedAt"].endswith(" ago")
    assert "Driver" not in row(SECRET, with_driver=False, now_ns=now)
