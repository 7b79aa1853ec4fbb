"""``shoal config create|ls|inspect|rm``: Docker's config commands, flags, columns and errors."""

import click

from shoal.cli import secret_config
from shoal.cli.framework import CLIError, docker_command, filter_option, out, with_client
from shoal.cli.listing import parse_filters
from shoal.client import Client, filters_param


@click.group("config")
def config_group() -> None:
    """Manage Swarm configs"""


@docker_command(config_group, "create", "[OPTIONS] CONFIG file|-", min_args=2, max_args=2)
@click.option(
    "-l", "--label", "labels", multiple=True, type=secret_config.LABEL, help="Config labels"
)
@click.option("--template-driver", default="", help="Template driver")
@with_client
async def config_create(
    client: Client, args: tuple[str, ...], labels: tuple[str, ...], template_driver: str
) -> None:
    """Create a config from a file or STDIN"""
    name, file_name = args
    try:
        data = secret_config.read_data("config", file_name, secret_config.MAX_CONFIG_READ)
    except CLIError as error:
        raise CLIError(f'Error reading content from "{file_name}": {error.message}') from None
    spec: dict = {
        "Name": name,
        "Labels": secret_config.labels_map(labels),
        "Data": secret_config.encode(data),
    }
    if template_driver:
        spec["Templating"] = {"Name": template_driver}
    resp = await client.post("/configs/create", spec)
    out(resp["ID"])


CONFIG_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"


@docker_command(config_group, "ls", "[OPTIONS]")
@filter_option()
@click.option("--format", "fmt", help="Format output using a custom template")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@with_client
async def config_ls(client: Client, filters: tuple[str, ...], fmt: str | None, quiet: bool) -> None:
    """List configs"""
    parsed = parse_filters(filters)
    params = {"filters": filters_param(parsed)} if parsed else None
    configs = await client.request("GET", "/configs", params)
    secret_config.print_rows(configs, fmt, quiet, CONFIG_TABLE, with_driver=False)


@docker_command(config_group, "inspect", "[OPTIONS] CONFIG [CONFIG...]", min_args=1, max_args=None)
@click.option("-f", "--format", "fmt", help="Format output using a custom template")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@with_client
async def config_inspect(
    client: Client, args: tuple[str, ...], fmt: str | None, pretty: bool
) -> None:
    """Display detailed information on one or more configs"""
    await secret_config.inspect(client, "config", args, fmt, pretty, secret_config.config_pretty)


@docker_command(config_group, "rm", "CONFIG [CONFIG...]", min_args=1, max_args=None)
@with_client
async def config_rm(client: Client, args: tuple[str, ...]) -> None:
    """Remove one or more configs"""
    await secret_config.remove(client, "config", args)
