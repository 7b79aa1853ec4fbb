"""The CLI's renderings against what Docker's CLI printed (see the transcripts of real Swarm)."""

import pytest

from shoal.cli.humanize import bytes_size, human_duration, ram_in_bytes, truncate_id
from shoal.cli.service_flags import parse_env, parse_publish
from shoal.golang import GoError, GoTime, format_duration, parse_duration
from shoal.golang.tabwriter import render
from shoal.golang.template import Template, TemplateError

S = 1_000_000_000
M = 60 * S
H = 60 * M
D = 24 * H


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (-5 * S, "Less than a second"),
        (999_000_000, "Less than a second"),
        (S, "1 second"),
        (1_999_000_000, "1 second"),
        (59_999_000_000, "59 seconds"),
        (60 * S, "About a minute"),
        (119_900_000_000, "About a minute"),
        (120 * S, "2 minutes"),
        (59 * M + 59 * S, "59 minutes"),
        (60 * M, "About an hour"),
        (89 * M + 59 * S, "About an hour"),
        (90 * M, "2 hours"),
        (47 * H + 29 * M + 59 * S, "47 hours"),
        (47 * H + 30 * M, "2 days"),
        (13 * D + 23 * H, "13 days"),
        (14 * D, "2 weeks"),
        (59 * D + 23 * H, "8 weeks"),
        (60 * D, "2 months"),
        (729 * D + 23 * H, "24 months"),
        (730 * D, "2 years"),
        (1095 * D, "3 years"),
    ],
)
def test_human_duration_matches_go_units(ns, text):
    assert human_duration(ns) == text


def test_sizes_as_docker_prints_and_reads_them():
    assert bytes_size(25276510208) == "23.54GiB"
    assert bytes_size(100000 * 1024**3) == "97.66TiB"
    assert ram_in_bytes("512m") == 512 * 1024**2
    assert ram_in_bytes("1g") == 1024**3
    with pytest.raises(GoError, match="invalid size: 'lots'"):
        ram_in_bytes("lots")


def test_empty_table_keeps_the_minimum_width():
    header = "ID\tNAME\tMODE\tREPLICAS\tIMAGE\tPORTS"
    assert render([header]) == "ID        NAME      MODE      REPLICAS   IMAGE     PORTS\n"


def test_table_pads_columns_and_leaves_an_empty_last_cell_padded():
    lines = [
        "ID\tNAME\tMODE\tREPLICAS\tIMAGE\tPORTS",
        "pkwub9zt9j06\thelloworld\treplicated\t2/2\talpine:latest\t",
    ]
    assert render(lines).splitlines() == [
        "ID             NAME         MODE         REPLICAS   IMAGE           PORTS",
        "pkwub9zt9j06   helloworld   replicated   2/2        alpine:latest   ",
    ]


def test_node_table_header_with_self_marker():
    tmpl = Template(
        "{{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t"
        "{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}"
    )
    header = tmpl.execute(
        {
            "ID": "ID",
            "Hostname": "HOSTNAME",
            "Status": "STATUS",
            "Availability": "AVAILABILITY",
            "ManagerStatus": "MANAGER STATUS",
            "EngineVersion": "ENGINE VERSION",
        }
    )
    row = tmpl.execute(
        {
            "ID": "517nbt4zdodiiwkedc7esvgv9",
            "Self": True,
            "Hostname": "vm",
            "Status": "Ready",
            "Availability": "Active",
            "ManagerStatus": "Leader",
            "EngineVersion": "20.10.24+dfsg1",
        }
    )
    assert render([header, row]).splitlines() == [
        "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION",
        "517nbt4zdodiiwkedc7esvgv9 *   vm         Ready     Active         Leader           20.10.24+dfsg1",
    ]


def test_templates_users_write():
    data = {
        "Spec": {"Labels": {"c": "", "d": "1"}, "Availability": "active"},
        "Status": {"State": "ready"},
    }
    assert Template("{{.Status.State}} {{.Spec.Availability}}").execute(data) == "ready active"
    assert Template("{{json .Spec.Labels}}").execute(data) == '{"c":"","d":"1"}'
    assert (
        Template("{{range $k, $v := .Spec.Labels}}[{{$k}}{{if $v}}={{$v}}{{end}}]{{end}}").execute(
            data
        )
        == "[c][d=1]"
    )
    assert Template("{{.Missing}}").execute(data) == "<no value>"
    assert Template("{{- .Status.State -}} x").execute(data) == "readyx"
    with pytest.raises(TemplateError):
        Template("{{if .A}}")


def test_go_durations_and_times():
    assert parse_duration("1h30m") == 90 * M
    assert format_duration(5 * S) == "5s"
    assert format_duration(2160 * H) == "2160h0m0s"
    with pytest.raises(GoError, match='time: invalid duration "abc"'):
        parse_duration("abc")
    t = GoTime.parse("2026-11-22T10:11:20.998184724Z")
    assert t is not None and t.string() == "2026-11-22 10:11:20.998184724 +0000 UTC"


def test_publish_flag_forms_and_docker_errors():
    assert parse_publish("8080:80") == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080}
    ]
    assert parse_publish("mode=host,target=80,published=8081") == [
        {"Protocol": "tcp", "PublishMode": "host", "TargetPort": 80, "PublishedPort": 8081}
    ]
    assert parse_publish("80/udp") == [
        {"Protocol": "udp", "TargetPort": 80, "PublishMode": "ingress"}
    ]
    with pytest.raises(GoError, match="invalid hostPort: 99999"):
        parse_publish("99999:80")
    with pytest.raises(GoError, match="invalid containerPort: abc"):
        parse_publish("abc")
    with pytest.raises(
        GoError, match=r"invalid publish mode value \(bogus\): must be either 'ingress' or 'host'"
    ):
        parse_publish("mode=bogus,target=80")
    with pytest.raises(GoError, match="invalid environment variable: =x"):
        parse_env("=x")


def test_short_ids():
    assert truncate_id("26cz2rijoi5yghz5dhgbol9oa") == "26cz2rijoi5y"
