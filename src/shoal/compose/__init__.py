"""Compose files as Docker's ``stack deploy`` reads them (versions 3.0 to 3.9): loading,
interpolation, validation with Docker's messages, merging, and conversion to the Engine API's
networks, secrets, configs and services. Pure: it reads only the files it is given."""

from shoal.compose.convert import (
    IMAGE_LABEL,
    NAMESPACE_LABEL,
    RUNTIME_KEY,
    Stack,
    convert,
    scope,
)
from shoal.compose.errors import ComposeError
from shoal.compose.loader import load, read_files
from shoal.compose.project import ComposeFile, Project

__all__ = [
    "IMAGE_LABEL",
    "NAMESPACE_LABEL",
    "RUNTIME_KEY",
    "ComposeError",
    "ComposeFile",
    "Project",
    "Stack",
    "convert",
    "load",
    "read_files",
    "scope",
]
