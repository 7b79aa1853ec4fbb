"""Checks on secrets and configs, and on the references a service makes to them, with
swarmkit's messages. Pure: nothing here reads the store."""

import re
from collections.abc import Sequence

from shoal.api.specs import ConfigReference, ConfigSpec, ContainerSpec, SecretSpec
from shoal.errors import InvalidArgument, ShoalError, swarm_error
from shoal.golang import GoError
from shoal.golang.base64 import decode_std

# swarmkit's limits on Spec.Data (validation.MaxSecretSize, controlapi.MaxConfigSize): the
# data must be shorter than this, and not empty.
MAX_SECRET_SIZE = 500 * 1024
MAX_CONFIG_SIZE = 1000 * 1024

_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
MAX_NAME_LENGTH = 64


def _bad(desc: str) -> InvalidArgument:
    return swarm_error(InvalidArgument, desc)


def validate_object_name(name: str) -> None:
    """A secret's or config's name (swarmkit's validateConfigOrSecretAnnotations)."""
    if not name:
        raise _bad("name must be provided")
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise _bad(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end "
            "character must be [a-zA-Z0-9]"
        )


def decode_data(data: str | None) -> bytes:
    """Spec.Data (base64, as Go writes a []byte in JSON) as bytes; Go's error if it is not."""
    if not data:
        return b""
    try:
        return decode_std(data)
    except GoError as err:
        raise InvalidArgument(str(err)) from None


def validate_secret_spec(spec: SecretSpec) -> None:
    validate_object_name(spec.Name)
    if spec.Driver is not None:
        if not spec.Driver.Name:
            raise _bad("secret driver must have a name")
        # shoal has no secret driver plugins: Docker's word for a plugin it cannot find.
        raise swarm_error(ShoalError, f'plugin "{spec.Driver.Name}" not found')
    size = len(decode_data(spec.Data))
    if size >= MAX_SECRET_SIZE or size < 1:
        raise _bad(f"secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes")


def validate_config_spec(spec: ConfigSpec) -> None:
    validate_object_name(spec.Name)
    size = len(decode_data(spec.Data))
    if size >= MAX_CONFIG_SIZE or size < 1:
        raise _bad(f"config data must be larger than 0 and less than {MAX_CONFIG_SIZE} bytes")


def check_labels_only(
    current: SecretSpec | ConfigSpec, new: SecretSpec | ConfigSpec
) -> dict[str, str]:
    """An update may change the labels only: the name must stay, and data, when sent, must
    be the same. Returns the new labels."""
    if current.Name != new.Name or (
        new.Data and decode_data(new.Data) != decode_data(current.Data)
    ):
        raise _bad("only updates to Labels are allowed")
    return dict(new.Labels or {})


# --- a service's references ------------------------------------------------------------------


def validate_secret_refs(container: ContainerSpec) -> None:
    """Every reference names its secret (ID and name) and a file target, no two the same."""
    targets: dict[str, str] = {}
    for ref in container.Secrets or ():
        if not ref.SecretID or not ref.SecretName:
            raise _bad("malformed secret reference")
        if ref.File is None:
            raise _bad("malformed secret reference, no target provided")
        _check_target(targets, "secret", ref.SecretName, ref.File.Name)


def validate_config_refs(container: ContainerSpec) -> None:
    targets: dict[str, str] = {}
    for ref in container.Configs or ():
        if not ref.ConfigID or not ref.ConfigName:
            raise _bad("malformed config reference")
        if ref.File is None and ref.Runtime is None:
            raise _bad("malformed config reference, no target provided")
        if ref.File is not None:
            _check_target(targets, "config", ref.ConfigName, ref.File.Name)


def _check_target(targets: dict[str, str], kind: str, name: str, file_name: str) -> None:
    if not file_name:
        raise _bad(f"malformed file {kind} reference, invalid target file name provided")
    if file_name in targets:
        raise _bad(
            f"{kind} references '{targets[file_name]}' and '{name}' have a conflicting "
            f"target: '{file_name}'"
        )
    targets[file_name] = name


def check_config_targets_set(configs: Sequence[ConfigReference] | None) -> None:
    """Docker's daemon refuses, before swarmkit sees it, a config reference with neither a
    file nor a runtime target, or with both."""
    for ref in configs or ():
        if ref.File is None and ref.Runtime is None:
            raise InvalidArgument("invalid Config: either File or Runtime should be set")
        if ref.File is not None and ref.Runtime is not None:
            raise InvalidArgument("invalid Config: cannot specify both File and Runtime")


def references_not_found(kind: str, names: Sequence[str]) -> InvalidArgument:
    """swarmkit's error for references to secrets or configs that are not there (or are
    there under another name)."""
    what = kind if len(names) == 1 else f"{kind}s"
    return _bad(f"{what} not found: {', '.join(names)}")


def in_use(kind: str, name: str, service_names: Sequence[str]) -> InvalidArgument:
    """swarmkit's refusal to remove a secret or config that services use."""
    what = "service" if len(service_names) == 1 else "services"
    return _bad(f"{kind} '{name}' is in use by the following {what}: {', '.join(service_names)}")
