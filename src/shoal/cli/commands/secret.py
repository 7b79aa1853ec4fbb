"""``shoal secret create|ls|inspect|rm``: Docker's secret commands, flags, columns and errors.
A secret's data goes to the managers and is never shown again."""

import click

from shoal.cli import secret_config
from shoal.cli.framework import CLIError, docker_command, filter_option, out, with_client
from shoal.cli.listing import parse_filters
from shoal.client import Client, filters_param


@click.group("secret")
def secret_group() -> None:
    """Manage Swarm secrets"""


@docker_command(secret_group, "create", "[OPTIONS] SECRET [file|-]", min_args=1, max_args=2)
@click.option("-d", "--driver", default="", help="Secret driver")
@click.option(
    "-l", "--label", "labels", multiple=True, type=secret_config.LABEL, help="Secret labels"
)
@click.option("--template-driver", default="", help="Template driver")
@with_client
async def secret_create(
    client: Client,
    args: tuple[str, ...],
    driver: str,
    labels: tuple[str, ...],
    template_driver: str,
) -> None:
    """Create a secret from a file or STDIN as content"""
    name = args[0]
    file_name = args[1] if len(args) > 1 else ""
    spec: dict = {"Name": name, "Labels": secret_config.labels_map(labels)}
    if driver:
        if file_name:
            raise CLIError("When using secret driver secret data must be empty")
    else:
        data = secret_config.read_data("secret", file_name, secret_config.MAX_SECRET_READ)
        spec["Data"] = secret_config.encode(data)
    if driver:
        spec["Driver"] = {"Name": driver}
    if template_driver:
        spec["Templating"] = {"Name": template_driver}
    resp = await client.post("/secrets/create", spec)
    out(resp["ID"])


SECRET_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"


@docker_command(secret_group, "ls", "[OPTIONS]")
@filter_option()
@click.option("--format", "fmt", help="Format output using a custom template")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@with_client
async def secret_ls(client: Client, filters: tuple[str, ...], fmt: str | None, quiet: bool) -> None:
    """List secrets"""
    parsed = parse_filters(filters)
    params = {"filters": filters_param(parsed)} if parsed else None
    secrets = await client.request("GET", "/secrets", params)
    secret_config.print_rows(secrets, fmt, quiet, SECRET_TABLE, with_driver=True)


@docker_command(secret_group, "inspect", "[OPTIONS] SECRET [SECRET...]", min_args=1, max_args=None)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@with_client
async def secret_inspect(
    client: Client, args: tuple[str, ...], fmt: str | None, pretty: bool
) -> None:
    """Display detailed information on one or more secrets"""
    await secret_config.inspect(client, "secret", args, fmt, pretty, secret_config.secret_pretty)


@docker_command(secret_group, "rm", "SECRET [SECRET...]", min_args=1, max_args=None)
@with_client
async def secret_rm(client: Client, args: tuple[str, ...]) -> None:
    """Remove one or more secrets"""
    await secret_config.remove(client, "secret", args)
