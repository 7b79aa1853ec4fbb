"""The stored objects: Node, Service, Task, Network, Secret, Config, Cluster.

Each carries Docker's fields under Docker's names, plus a few fields of our own that the
Docker API does not show (listed in ``INTERNAL``; ``to_api`` leaves them out).
"""

import base64
from typing import Any, ClassVar

from pydantic import Field

from shoal.api.base import EPOCH, Annotations, Model, Timestamp, Version
from shoal.api.specs import (
    ConfigSpec,
    Driver,
    EndpointPortConfig,
    EndpointSpec,
    IPAMConfig,
    IPAMOptions,
    NetworkSpec,
    NodeSpec,
    SecretSpec,
    ServiceSpec,
    SwarmSpec,
    TaskSpec,
)
from shoal.api.types import (
    NodeRole,
    NodeState,
    PublishMode,
    Reachability,
    TaskState,
    UpdateState,
)

_Timestamp = Timestamp  # TaskStatus has a field of that name
_NodeRole = NodeRole
_NodeState = NodeState
_Reachability = Reachability
_TaskState = TaskState
_UpdateState = UpdateState

_Version = Version
_Annotations = Annotations
_EndpointSpec = EndpointSpec
_EndpointPortConfig = EndpointPortConfig
_NodeSpec = NodeSpec
_NetworkSpec = NetworkSpec
_Driver = Driver
_IPAMOptions = IPAMOptions
_ServiceSpec = ServiceSpec
_SwarmSpec = SwarmSpec
_TaskSpec = TaskSpec


class StoredObject(Model):
    """ID, version and timestamps: what every object in the store has."""

    KIND: ClassVar[str] = ""
    INTERNAL: ClassVar[frozenset[str]] = frozenset()

    ID: str = ""
    Version: _Version = Field(default_factory=_Version)
    CreatedAt: Timestamp = EPOCH
    UpdatedAt: Timestamp = EPOCH

    def to_api(self) -> dict[str, Any]:
        """The object as the Docker Engine API returns it."""
        return self.model_dump(mode="json", exclude_none=True, exclude=set(self.INTERNAL))


# --- nodes -----------------------------------------------------------------------------------


_StoredObject = StoredObject


class Platform(Model):
    Architecture: str = ""
    OS: str = ""


_Platform = Platform


class NodeResources(Model):
    NanoCPUs: int = 0
    MemoryBytes: int = 0
    GenericResources: list[dict] | None = None


_NodeResources = NodeResources


class EnginePlugin(Model):
    Type: str
    Name: str


_EnginePlugin = EnginePlugin


class EngineDescription(Model):
    EngineVersion: str = ""
    Labels: dict[str, str] | None = None
    Plugins: list[_EnginePlugin] | None = None


_EngineDescription = EngineDescription


class TLSInfo(Model):
    TrustRoot: str | None = None
    CertIssuerSubject: str | None = None
    CertIssuerPublicKey: str | None = None


_TLSInfo = TLSInfo


class NodeDescription(Model):
    Hostname: str = ""
    Platform: _Platform = Field(default_factory=_Platform)
    Resources: _NodeResources = Field(default_factory=_NodeResources)
    Engine: _EngineDescription = Field(default_factory=_EngineDescription)
    TLSInfo: _TLSInfo | None = None
    # shoal's own: the runtimes this node can run tasks with ("process", "container").
    Runtimes: list[str] = Field(default_factory=list)
    # shoal's own: the UDP port of this node's VXLAN traffic, where its daemon was given one
    # (nodes that share a host need one each); else the cluster's --data-path-port.
    DataPathPort: int | None = None


# What a node's description holds for shoal's own use, left out of the Docker API.
DESCRIPTION_INTERNAL = ("Runtimes", "DataPathPort")

_NodeDescription = NodeDescription


class NodeStatus(Model):
    State: _NodeState = NodeState.UNKNOWN
    Message: str | None = None
    Addr: str = ""


_NodeStatus = NodeStatus


class ManagerStatus(Model):
    Leader: bool | None = None
    Reachability: _Reachability = Reachability.UNKNOWN
    Addr: str = ""


_ManagerStatus = ManagerStatus


class NodeCertificate(Model):
    """The node's current certificate as the CA issued it (shoal's own field)."""

    Role: _NodeRole = NodeRole.WORKER
    CN: str = ""
    Certificate: str = ""
    Status: str = "issued"


_NodeCertificate = NodeCertificate


class Node(StoredObject):
    KIND: ClassVar[str] = "node"
    INTERNAL: ClassVar[frozenset[str]] = frozenset({"Role", "Certificate"})

    Spec: _NodeSpec = Field(default_factory=_NodeSpec)
    Description: _NodeDescription | None = None
    Status: _NodeStatus = Field(default_factory=_NodeStatus)
    ManagerStatus: _ManagerStatus | None = None
    # The role the node has now (Spec.Role is the role it is asked to have).
    Role: _NodeRole = NodeRole.WORKER
    Certificate: _NodeCertificate | None = None

    @property
    def hostname(self) -> str:
        return self.Description.Hostname if self.Description else ""

    def to_api(self) -> dict[str, Any]:
        """Docker's fields only (moby's swagger NodeDescription): the runtimes a node offers
        show as its engine's ``Runtime`` plugins, its VXLAN port is the managers' business."""
        shown = super().to_api()
        for internal in DESCRIPTION_INTERNAL:
            (shown.get("Description") or {}).pop(internal, None)
        return shown

    @property
    def name(self) -> str:
        """What Docker shows in HOSTNAME / NODE columns: Spec.Name if set, else the hostname."""
        return self.Spec.Name or self.hostname


# --- networks --------------------------------------------------------------------------------


_Node = Node


VXLAN_ID_OPTION = "com.docker.network.driver.overlay.vxlanid_list"


class Network(StoredObject):
    """A swarm-scoped network: the spec as declared, and what the managers allocated for it
    (its VXLAN ID in DriverState, its subnet and gateway in IPAMOptions)."""

    KIND: ClassVar[str] = "network"

    Spec: _NetworkSpec = Field(default_factory=_NetworkSpec)
    DriverState: _Driver | None = None
    IPAMOptions: _IPAMOptions | None = None

    @property
    def name(self) -> str:
        return self.Spec.Name

    @property
    def is_ingress(self) -> bool:
        return bool(self.Spec.Ingress)

    @property
    def ipam_config(self) -> IPAMConfig | None:
        """Its allocated subnet (with gateway and range), once allocated."""
        configs = self.IPAMOptions.Configs if self.IPAMOptions else None
        return configs[0] if configs and configs[0].Subnet else None

    @property
    def vxlan_id(self) -> int | None:
        """Its allocated VXLAN ID (the first of DriverState's vxlanid_list)."""
        options = (self.DriverState.Options if self.DriverState else None) or {}
        first = options.get(VXLAN_ID_OPTION, "").split(",")[0].strip()
        return int(first) if first.isdigit() else None


_Network = Network


class NetworkAttachment(Model):
    """A task's place on a network: the network as it was when the task was given its
    addresses, and those addresses (CIDR: "10.0.1.3/24")."""

    Network: _Network
    Addresses: list[str] = Field(default_factory=list)


_NetworkAttachment = NetworkAttachment


# --- tasks -----------------------------------------------------------------------------------


class ContainerStatus(Model):
    ContainerID: str | None = None
    PID: int | None = None
    ExitCode: int | None = None


_ContainerStatus = ContainerStatus


class PortStatus(Model):
    Ports: list[_EndpointPortConfig] | None = None


_PortStatus = PortStatus


class TaskStatus(Model):
    Timestamp: _Timestamp = EPOCH
    State: _TaskState = TaskState.NEW
    Message: str = ""
    Err: str | None = None
    ContainerStatus: _ContainerStatus | None = None
    PortStatus: _PortStatus = Field(default_factory=_PortStatus)


_TaskStatus = TaskStatus


class Task(StoredObject):
    KIND: ClassVar[str] = "task"
    INTERNAL: ClassVar[frozenset[str]] = frozenset(
        {"ServiceAnnotations", "SpecVersion", "Endpoint", "Runtime"}
    )

    Labels: dict[str, str] = Field(default_factory=dict)
    Spec: _TaskSpec = Field(default_factory=_TaskSpec)
    ServiceID: str = ""
    Slot: int | None = None
    NodeID: str | None = None
    Status: _TaskStatus = Field(default_factory=_TaskStatus)
    DesiredState: _TaskState = TaskState.NEW
    NetworksAttachments: list[_NetworkAttachment] | None = None
    # shoal's own, as in swarmkit: the service's name and labels when the task was made, the
    # version of the service spec it was made from, and the service's endpoint then.
    ServiceAnnotations: _Annotations = Field(default_factory=_Annotations)
    SpecVersion: _Version | None = None
    Endpoint: _EndpointSpec | None = None
    # The iteration of its job service the task was created for (jobs only).
    JobIteration: _Version | None = None

    @property
    def name(self) -> str:
        """``web.1`` for a replicated task, ``web.<node id>`` for a global one."""
        svc = self.ServiceAnnotations.Name
        if self.Slot:
            return f"{svc}.{self.Slot}"
        return f"{svc}.{self.NodeID or ''}"

    @property
    def full_name(self) -> str:
        """``web.1.<task id>``, or ``web.<node id>.<task id>`` for a global task: its
        container's name, its DNS name, ``{{.Task.Name}}`` (as swarmkit names it)."""
        return f"{self.name}.{self.ID}"

    def to_api(self) -> dict[str, Any]:
        shown = super().to_api()
        if not shown.get("Slot"):
            shown.pop("Slot", None)  # Docker leaves out a slot of 0 (a replicated job's first)
        mesh = self.routing_mesh_ports()
        if mesh:
            # Docker's PortStatus lists host-mode publications only (service ps PORTS); the
            # host port a task got for the routing mesh is shoal's own, shown apart.
            host = [p for p in self.Status.PortStatus.Ports or [] if p not in mesh]
            shown["Status"]["PortStatus"] = PortStatus(Ports=host or None).to_json()
            shown["Shoal"] = {"RoutingMeshPorts": [p.to_json() for p in mesh]}
        return shown

    def routing_mesh_ports(self) -> list[EndpointPortConfig]:
        """The ports in its PortStatus the task was given on its node for the routing mesh to
        forward an ingress-published port to (those not published in host mode)."""
        published = (self.Endpoint.Ports if self.Endpoint is not None else None) or []
        host = {(p.TargetPort, p.Protocol) for p in published if p.PublishMode == PublishMode.HOST}
        return [
            p for p in self.Status.PortStatus.Ports or [] if (p.TargetPort, p.Protocol) not in host
        ]

    def address_on(self, network_id: str) -> str | None:
        """The task's address on a network (CIDR), if it has one there."""
        for attachment in self.NetworksAttachments or ():
            if attachment.Network.ID == network_id and attachment.Addresses:
                return attachment.Addresses[0]
        return None


# --- services --------------------------------------------------------------------------------


_Task = Task


class EndpointVirtualIP(Model):
    NetworkID: str = ""
    Addr: str = ""


_EndpointVirtualIP = EndpointVirtualIP


class Endpoint(Model):
    Spec: _EndpointSpec = Field(default_factory=_EndpointSpec)
    Ports: list[_EndpointPortConfig] | None = None
    VirtualIPs: list[_EndpointVirtualIP] | None = None


_Endpoint = Endpoint


class UpdateStatus(Model):
    State: _UpdateState | None = None
    StartedAt: _Timestamp | None = None
    CompletedAt: _Timestamp | None = None
    Message: str | None = None


_UpdateStatus = UpdateStatus


class JobStatus(Model):
    """Where a job service is: its iteration (bumped by each update, which runs it again) and
    when that iteration began."""

    JobIteration: Version = Field(default_factory=Version)
    LastExecution: _Timestamp | None = None


_JobStatus = JobStatus


class ServiceStatus(Model):
    RunningTasks: int = 0
    DesiredTasks: int = 0
    CompletedTasks: int = 0


_ServiceStatus = ServiceStatus


class Service(StoredObject):
    KIND: ClassVar[str] = "service"
    INTERNAL: ClassVar[frozenset[str]] = frozenset({"SpecVersion", "PendingDelete"})

    Spec: _ServiceSpec = Field(default_factory=_ServiceSpec)
    PreviousSpec: _ServiceSpec | None = None
    Endpoint: _Endpoint = Field(default_factory=_Endpoint)
    UpdateStatus: _UpdateStatus | None = None
    ServiceStatus: _ServiceStatus | None = None
    JobStatus: _JobStatus | None = None
    # shoal's own: the version at which Spec last changed (tasks record it as SpecVersion).
    SpecVersion: _Version | None = None
    PendingDelete: bool | None = None

    @property
    def name(self) -> str:
        return self.Spec.Name


# --- secrets and configs ---------------------------------------------------------------------


_Service = Service
_SecretSpec = SecretSpec
_ConfigSpec = ConfigSpec


class Secret(StoredObject):
    """A secret: its spec, data included. The API shows it without ``Spec.Data``."""

    KIND: ClassVar[str] = "secret"

    Spec: _SecretSpec = Field(default_factory=_SecretSpec)

    @property
    def name(self) -> str:
        return self.Spec.Name

    def to_api(self) -> dict[str, Any]:
        shown = super().to_api()
        shown.get("Spec", {}).pop("Data", None)
        return shown


class Config(StoredObject):
    KIND: ClassVar[str] = "config"

    Spec: _ConfigSpec = Field(default_factory=_ConfigSpec)

    @property
    def name(self) -> str:
        return self.Spec.Name


# --- the cluster -----------------------------------------------------------------------------


_Secret = Secret
_Config = Config


class JoinTokens(Model):
    Worker: str = ""
    Manager: str = ""


_JoinTokens = JoinTokens


class RootRotation(Model):
    """A root CA rotation under way: the new root, and its key cross-signed by the old."""

    CACert: str
    CAKey: str
    CrossSignedCACert: str


_RootRotation = RootRotation


class RootCA(Model):
    """The cluster's root of trust (shoal's own; replicated so any manager can sign)."""

    CACert: str = ""
    CAKey: str = ""
    CACertHash: str = ""
    JoinTokens: _JoinTokens = Field(default_factory=_JoinTokens)
    RootRotation: _RootRotation | None = None
    # The Spec.CAConfig.ForceRotate value the last rotation answered.
    LastForcedRotation: int = 0

    def signer(self) -> tuple[bytes, bytes, bytes]:
        """The root that signs node certificates now, its key, and what a certificate it
        signs carries after it (the cross-signed root during a rotation, else nothing)."""
        if self.RootRotation is not None:
            r = self.RootRotation
            return r.CACert.encode(), r.CAKey.encode(), r.CrossSignedCACert.encode()
        return self.CACert.encode(), self.CAKey.encode(), b""

    def trust_bundle(self) -> bytes:
        """The roots every node trusts: during a rotation the new one (first) and the old."""
        if self.RootRotation is not None:
            return (self.RootRotation.CACert + self.CACert).encode()
        return self.CACert.encode()


_RootCA = RootCA


class EncryptionKey(Model):
    """A key the cluster keeps for one of its subsystems (swarmkit's EncryptionKey): the
    managers' unlock key is Subsystem "manager"."""

    Subsystem: str
    Key: str  # base64 of the key's bytes

    def key_bytes(self) -> bytes:
        return base64.b64decode(self.Key)


MANAGER_SUBSYSTEM = "manager"


class Cluster(StoredObject):
    KIND: ClassVar[str] = "cluster"
    INTERNAL: ClassVar[frozenset[str]] = frozenset({"RootCA", "NetworkBootstrapKeys", "UnlockKeys"})

    Spec: _SwarmSpec = Field(default_factory=_SwarmSpec)
    TLSInfo: _TLSInfo = Field(default_factory=_TLSInfo)
    RootRotationInProgress: bool = False
    # What `swarm init` was given: no pool means Swarm's default (DEFAULT_ADDR_POOL), and the
    # API shows null then, as Docker's does.
    DefaultAddrPool: list[str] | None = None
    SubnetSize: int = 24
    DataPathPort: int = 4789
    RootCA: _RootCA = Field(default_factory=_RootCA)
    NetworkBootstrapKeys: list[dict] | None = None
    # The managers' unlock key while autolock is on (shown only by GET /swarm/unlockkey).
    UnlockKeys: list[EncryptionKey] = Field(default_factory=list)

    def manager_unlock_key(self) -> bytes | None:
        """The key-encryption key managers seal their keys under: None with autolock off."""
        if not self.Spec.EncryptionConfig.AutoLockManagers:
            return None
        for key in self.UnlockKeys:
            if key.Subsystem == MANAGER_SUBSYSTEM:
                return key.key_bytes()
        return None

    def to_api(self) -> dict[str, Any]:
        # Docker shows DefaultAddrPool even when it is null (the default pool), in its place
        # between RootRotationInProgress and SubnetSize.
        shown = super().to_api()
        return {
            name: shown.get(name)
            for name in type(self).model_fields
            if name not in self.INTERNAL and (name in shown or name == "DefaultAddrPool")
        }


_Cluster = Cluster


OBJECT_TYPES: dict[str, type[StoredObject]] = {
    cls.KIND: cls for cls in (Node, Service, Task, Network, Secret, Config, Cluster)
}

DEFAULT_ADDR_POOL = ["10.0.0.0/8"]
