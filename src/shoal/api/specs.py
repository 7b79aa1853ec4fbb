"""Specs: what a user declares (Docker's ServiceSpec, TaskSpec, NodeSpec, SwarmSpec)."""

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, field_validator

from shoal.api.base import Model
from shoal.api.types import (
    EndpointMode,
    FailureAction,
    NodeAvailability,
    NodeRole,
    PortProtocol,
    PublishMode,
    RestartCondition,
    UpdateOrder,
)

_EndpointMode = EndpointMode
_FailureAction = FailureAction
_NodeAvailability = NodeAvailability
_NodeRole = NodeRole
_PortProtocol = PortProtocol
_PublishMode = PublishMode
_RestartCondition = RestartCondition
_UpdateOrder = UpdateOrder

SECOND = 1_000_000_000  # Docker durations are integer nanoseconds


# --- tasks -----------------------------------------------------------------------------------


class HealthConfig(Model):
    Test: list[str] | None = None
    Interval: int | None = None
    Timeout: int | None = None
    Retries: int | None = None
    StartPeriod: int | None = None
    StartInterval: int | None = None


_HealthConfig = HealthConfig


class Mount(Model):
    Target: str = ""
    Source: str = ""
    Type: str = "volume"
    ReadOnly: bool | None = None
    Consistency: str | None = None
    BindOptions: dict | None = None
    VolumeOptions: dict | None = None
    TmpfsOptions: dict | None = None


_Mount = Mount


class SecretReferenceFileTarget(Model):
    """Where a task sees a secret or config: a file (under /run/secrets for a secret whose
    Name is relative), its owner and its permission bits."""

    Name: str = ""
    UID: str = "0"
    GID: str = "0"
    Mode: int = 0o444


_SecretReferenceFileTarget = SecretReferenceFileTarget


class SecretReference(Model):
    File: _SecretReferenceFileTarget | None = None
    SecretID: str = ""
    SecretName: str = ""


_SecretReference = SecretReference


class ConfigReference(Model):
    File: _SecretReferenceFileTarget | None = None
    # Docker's ConfigReferenceRuntimeTarget (a config a credential spec reads); kept as sent.
    Runtime: dict | None = None
    ConfigID: str = ""
    ConfigName: str = ""


_ConfigReference = ConfigReference


class ContainerSpec(Model):
    """What to run. For the ``process`` runtime, ``Image`` is the program and ``Args`` its
    arguments (``Command``, when set, replaces the program), mirroring how Docker's CLI fills
    these fields from ``service create IMAGE [COMMAND] [ARG...]``."""

    Image: str = ""
    Labels: dict[str, str] | None = None
    Command: list[str] | None = None
    Args: list[str] | None = None
    Hostname: str | None = None
    Env: list[str] | None = None
    Dir: str | None = None
    User: str | None = None
    Groups: list[str] | None = None
    # The order of Docker's struct, so JSON reads the same as Docker's.
    Init: bool | None = None
    StopSignal: str | None = None
    TTY: bool | None = None
    OpenStdin: bool | None = None
    ReadOnly: bool | None = None
    Mounts: list[_Mount] | None = None
    StopGracePeriod: int | None = None
    Healthcheck: _HealthConfig | None = None
    Hosts: list[str] | None = None
    # Kept as sent (the node's resolver answers tasks); declared for its place in the JSON.
    DNSConfig: dict | None = None
    Secrets: list[_SecretReference] | None = None
    Configs: list[_ConfigReference] | None = None
    Isolation: str | None = None


_ContainerSpec = ContainerSpec


class ResourceLimits(Model):
    NanoCPUs: int | None = None
    MemoryBytes: int | None = None
    Pids: int | None = None


_ResourceLimits = ResourceLimits


class ResourceReservations(Model):
    NanoCPUs: int | None = None
    MemoryBytes: int | None = None
    GenericResources: list[dict] | None = None


_ResourceReservations = ResourceReservations


class ResourceRequirements(Model):
    Limits: _ResourceLimits = Field(default_factory=_ResourceLimits)
    Reservations: _ResourceReservations = Field(default_factory=_ResourceReservations)


_ResourceRequirements = ResourceRequirements


class RestartPolicy(Model):
    Condition: _RestartCondition | None = None
    Delay: int | None = None
    MaxAttempts: int | None = None
    Window: int | None = None


_RestartPolicy = RestartPolicy


class PlatformSpec(Model):
    Architecture: str = ""
    OS: str = ""


_PlatformSpec = PlatformSpec


class Placement(Model):
    Constraints: list[str] | None = None
    Preferences: list[dict] | None = None
    MaxReplicas: int | None = None
    Platforms: list[_PlatformSpec] | None = None


_Placement = Placement


class NetworkAttachmentConfig(Model):
    """A network a service's tasks join: ``Target`` is its ID once the daemon has resolved
    what the user gave (a name or an ID)."""

    Target: str = ""
    Aliases: list[str] | None = None
    DriverOpts: dict[str, str] | None = None


_NetworkAttachmentConfig = NetworkAttachmentConfig


class TaskSpec(Model):
    ContainerSpec: _ContainerSpec | None = None
    Resources: _ResourceRequirements = Field(default_factory=_ResourceRequirements)
    RestartPolicy: _RestartPolicy | None = None
    Placement: _Placement = Field(default_factory=_Placement)
    ForceUpdate: int = 0
    Runtime: str | None = None
    Networks: list[_NetworkAttachmentConfig] | None = None
    LogDriver: dict | None = None

    @property
    def runtime(self) -> str:
        """The runtime a node must offer to run this task (Docker's default is a container)."""
        return self.Runtime or "container"


# --- services --------------------------------------------------------------------------------


_TaskSpec = TaskSpec


class ReplicatedService(Model):
    Replicas: int = 1


_ReplicatedService = ReplicatedService


class GlobalService(Model):
    pass


_GlobalService = GlobalService


class ReplicatedJob(Model):
    """A job run to ``TotalCompletions`` completed tasks, ``MaxConcurrent`` at a time. Docker's
    daemon fills both (MaxConcurrent 1, TotalCompletions = MaxConcurrent) when left 0."""

    MaxConcurrent: int = 0
    TotalCompletions: int = 0


_ReplicatedJob = ReplicatedJob


class GlobalJob(Model):
    """A job run to completion once on every eligible node, per job iteration."""


_GlobalJob = GlobalJob


class ServiceMode(Model):
    Replicated: _ReplicatedService | None = None
    Global: _GlobalService | None = None
    ReplicatedJob: _ReplicatedJob | None = None
    GlobalJob: _GlobalJob | None = None

    @property
    def is_global(self) -> bool:
        return self.Global is not None

    @property
    def is_job(self) -> bool:
        return self.ReplicatedJob is not None or self.GlobalJob is not None

    @property
    def name(self) -> str:
        """As Docker's CLI and the ``mode`` filter spell it: ``replicated-job``..."""
        return {
            "Replicated": "replicated",
            "Global": "global",
            "ReplicatedJob": "replicated-job",
            "GlobalJob": "global-job",
        }.get(self.kind, "")

    @property
    def kind(self) -> str:
        """Which mode is set (the one field of Docker's one-of)."""
        for name in ("Replicated", "Global", "ReplicatedJob", "GlobalJob"):
            if getattr(self, name) is not None:
                return name
        return ""


_ServiceMode = ServiceMode


def _go_float(value: float) -> float | int:
    """A float64 as Go's encoding/json writes it: 0, not 0.0."""
    return int(value) if float(value).is_integer() else value


# A float field that Docker's daemon writes as Go does.
GoFloat = Annotated[float, PlainSerializer(_go_float, when_used="json")]


class UpdateConfig(Model):
    Parallelism: int = 1
    Delay: int | None = None
    FailureAction: _FailureAction | None = None
    Monitor: int | None = None
    MaxFailureRatio: GoFloat = 0.0  # a float, as one read back from the log is
    Order: _UpdateOrder | None = None

    @field_validator("MaxFailureRatio")
    @classmethod
    def _unsigned_zero(cls, value: float) -> float:
        # -0.0 is written as 0 (as Go writes a whole float) and reads back as 0.0: a ratio
        # has no sign, so it is 0.0 from the start.
        return value + 0.0


_UpdateConfig = UpdateConfig


class EndpointPortConfig(Model):
    Name: str | None = None
    Protocol: _PortProtocol = PortProtocol.TCP
    TargetPort: int = 0
    PublishedPort: int | None = None
    PublishMode: _PublishMode = PublishMode.INGRESS


_EndpointPortConfig = EndpointPortConfig


class EndpointSpec(Model):
    Mode: _EndpointMode | None = None  # vip when unset, as Docker
    Ports: list[_EndpointPortConfig] | None = None


_EndpointSpec = EndpointSpec


class ServiceSpec(Model):
    Name: str = ""
    Labels: dict[str, str] = Field(default_factory=dict)
    TaskTemplate: _TaskSpec = Field(default_factory=_TaskSpec)
    Mode: _ServiceMode = Field(
        default_factory=lambda: _ServiceMode(Replicated=_ReplicatedService())
    )
    UpdateConfig: _UpdateConfig | None = None
    RollbackConfig: _UpdateConfig | None = None
    # Deprecated by Docker in favour of TaskTemplate.Networks, where the daemon moves it.
    Networks: list[_NetworkAttachmentConfig] | None = None
    EndpointSpec: _EndpointSpec | None = None


# --- networks --------------------------------------------------------------------------------


_ServiceSpec = ServiceSpec


class Driver(Model):
    Name: str = ""
    Options: dict[str, str] | None = None


_Driver = Driver


class IPAMConfig(Model):
    Subnet: str | None = None
    Range: str | None = None
    Gateway: str | None = None


_IPAMConfig = IPAMConfig


class IPAMOptions(Model):
    Driver: _Driver = Field(default_factory=_Driver)
    Configs: list[_IPAMConfig] | None = None


_IPAMOptions = IPAMOptions


class NetworkSpec(Model):
    """A swarm network as declared (Docker's swarm.NetworkSpec)."""

    Name: str = ""
    Labels: dict[str, str] | None = None
    DriverConfiguration: _Driver | None = None
    IPv6Enabled: bool | None = None
    Internal: bool | None = None
    Attachable: bool | None = None
    Ingress: bool | None = None
    IPAMOptions: _IPAMOptions | None = None
    Scope: str | None = None


# --- secrets and configs ---------------------------------------------------------------------


_NetworkSpec = NetworkSpec


class SecretSpec(Model):
    """A secret as declared (Docker's swarm.SecretSpec). ``Data`` is base64 in JSON, as Go
    encodes a []byte; the API never returns it."""

    Name: str = ""
    Labels: dict[str, str] | None = None
    Data: str | None = None
    Driver: _Driver | None = None
    Templating: _Driver | None = None


class ConfigSpec(Model):
    """A config as declared (Docker's swarm.ConfigSpec); unlike a secret's, its Data is shown."""

    Name: str = ""
    Labels: dict[str, str] | None = None
    Data: str | None = None
    Templating: _Driver | None = None


_SecretSpec = SecretSpec
_ConfigSpec = ConfigSpec


# --- nodes -----------------------------------------------------------------------------------


class NodeSpec(Model):
    Name: str | None = None
    Labels: dict[str, str] = Field(default_factory=dict)
    Role: _NodeRole = NodeRole.WORKER
    Availability: _NodeAvailability = NodeAvailability.ACTIVE


# --- the cluster -----------------------------------------------------------------------------


_NodeSpec = NodeSpec


class OrchestrationConfig(Model):
    TaskHistoryRetentionLimit: int | None = 5

    # None is left out of the raft log, so it would read back as the default: it is the
    # default from the start (a null from a client is absent already).
    @field_validator("TaskHistoryRetentionLimit", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return 5 if value is None else value


_OrchestrationConfig = OrchestrationConfig


class RaftConfig(Model):
    SnapshotInterval: int = 10000
    KeepOldSnapshots: int | None = 0

    LogEntriesForSlowFollowers: int = 500
    ElectionTick: int = 10
    HeartbeatTick: int = 1

    @field_validator("KeepOldSnapshots", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return 0 if value is None else value  # as OrchestrationConfig's


_RaftConfig = RaftConfig


class DispatcherConfig(Model):
    HeartbeatPeriod: int = 5 * SECOND


_DispatcherConfig = DispatcherConfig


class CAConfig(Model):
    NodeCertExpiry: int = 90 * 24 * 3600 * SECOND
    ExternalCAs: list[dict] | None = None
    ForceRotate: int | None = None

    def node_cert_lifetime(self) -> dt.timedelta:
        return dt.timedelta(microseconds=self.NodeCertExpiry // 1000)


_CAConfig = CAConfig


class EncryptionConfig(Model):
    AutoLockManagers: bool = False


_EncryptionConfig = EncryptionConfig


class SwarmSpec(Model):
    Name: str = "default"
    Labels: dict[str, str] = Field(default_factory=dict)
    Orchestration: _OrchestrationConfig = Field(default_factory=_OrchestrationConfig)
    Raft: _RaftConfig = Field(default_factory=_RaftConfig)
    Dispatcher: _DispatcherConfig = Field(default_factory=_DispatcherConfig)
    CAConfig: _CAConfig = Field(default_factory=_CAConfig)
    TaskDefaults: dict = Field(default_factory=dict)
    EncryptionConfig: _EncryptionConfig = Field(default_factory=_EncryptionConfig)


_SwarmSpec = SwarmSpec
