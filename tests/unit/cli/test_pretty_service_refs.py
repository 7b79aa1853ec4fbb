"""``service inspect --pretty`` lists a service's configs and secrets as Docker's CLI does."""

from shoal.cli.pretty_service import print_service_pretty


def test_configs_and_secrets_lines(capsys):
    def ref(kind: str, name: str, target: str) -> dict:
        return {
            "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 292},
            f"{kind}ID": "x",
            f"{kind}Name": name,
        }

    service = {
        "ID": "u1odc7unn7saq5turt9l2jsso",
        "Spec": {
            "Name": "sapi-web",
            "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "shoal-test/busybox:latest",
                    "Args": ["sleep", "3000"],
                    "Init": False,
                    "Secrets": [
                        ref("Secret", "sapi-s1", "sapi-s1"),
                        ref("Secret", "sapi-s1", "other"),
                    ],
                    "Configs": [
                        ref("Config", "sapi-c1", "sapi-c1"),
                        ref("Config", "sapi-c2", "/etc/c2"),
                    ],
                },
                "Resources": {"Limits": {}, "Reservations": {}},
            },
            "EndpointSpec": {"Mode": "vip"},
        },
    }
    print_service_pretty(service)
    out = capsys.readouterr().out
    # As Docker 20.10 (CLI 28) printed it for this service, between Init and Resources.
    assert (
        " Init:\t\tfalse\n"
        "Configs:\n"
        " Target:\tsapi-c1\n"
        "  Source:\tsapi-c1\n"
        " Target:\t/etc/c2\n"
        "  Source:\tsapi-c2\n"
        "Secrets:\n"
        " Target:\tsapi-s1\n"
        "  Source:\tsapi-s1\n"
        " Target:\tother\n"
        "  Source:\tsapi-s1\n"
        "Resources:\n"
    ) in out
