from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ManagerPeer(_message.Message):
    __slots__ = ("node_id", "addr")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    addr: str
    def __init__(self, node_id: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...

class GetRootCACertificateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRootCACertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    def __init__(self, certificate: _Optional[bytes] = ...) -> None: ...

class IssueNodeCertificateRequest(_message.Message):
    __slots__ = ("token", "csr", "availability", "description", "advertise_addr", "node_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDR_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    csr: bytes
    availability: str
    description: bytes
    advertise_addr: str
    node_id: str
    def __init__(self, token: _Optional[str] = ..., csr: _Optional[bytes] = ..., availability: _Optional[str] = ..., description: _Optional[bytes] = ..., advertise_addr: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class IssueNodeCertificateResponse(_message.Message):
    __slots__ = ("node_id", "role", "certificate", "root_ca", "cluster_id", "managers")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ROOT_CA_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    role: str
    certificate: bytes
    root_ca: bytes
    cluster_id: str
    managers: _containers.RepeatedCompositeFieldContainer[ManagerPeer]
    def __init__(self, node_id: _Optional[str] = ..., role: _Optional[str] = ..., certificate: _Optional[bytes] = ..., root_ca: _Optional[bytes] = ..., cluster_id: _Optional[str] = ..., managers: _Optional[_Iterable[_Union[ManagerPeer, _Mapping]]] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("description", "advertise_addr")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDR_FIELD_NUMBER: _ClassVar[int]
    description: bytes
    advertise_addr: str
    def __init__(self, description: _Optional[bytes] = ..., advertise_addr: _Optional[str] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("session_id", "node", "managers", "root_ca", "heartbeat_period_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    ROOT_CA_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    node: bytes
    managers: _containers.RepeatedCompositeFieldContainer[ManagerPeer]
    root_ca: bytes
    heartbeat_period_ms: int
    def __init__(self, session_id: _Optional[str] = ..., node: _Optional[bytes] = ..., managers: _Optional[_Iterable[_Union[ManagerPeer, _Mapping]]] = ..., root_ca: _Optional[bytes] = ..., heartbeat_period_ms: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("period_ms",)
    PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    period_ms: int
    def __init__(self, period_ms: _Optional[int] = ...) -> None: ...

class AssignmentsRequest(_message.Message):
    __slots__ = ("session_id", "known")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    known: _containers.RepeatedCompositeFieldContainer[KnownTask]
    def __init__(self, session_id: _Optional[str] = ..., known: _Optional[_Iterable[_Union[KnownTask, _Mapping]]] = ...) -> None: ...

class KnownTask(_message.Message):
    __slots__ = ("id", "desired_state")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    desired_state: str
    def __init__(self, id: _Optional[str] = ..., desired_state: _Optional[str] = ...) -> None: ...

class AssignmentsMessage(_message.Message):
    __slots__ = ("type", "update_tasks", "remove_tasks", "routes", "networks", "update_secrets", "remove_secrets", "update_configs", "remove_configs", "unchanged_tasks")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COMPLETE: _ClassVar[AssignmentsMessage.Type]
        INCREMENTAL: _ClassVar[AssignmentsMessage.Type]
    COMPLETE: AssignmentsMessage.Type
    INCREMENTAL: AssignmentsMessage.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TASKS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TASKS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_CONFIGS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_CONFIGS_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_TASKS_FIELD_NUMBER: _ClassVar[int]
    type: AssignmentsMessage.Type
    update_tasks: _containers.RepeatedScalarFieldContainer[bytes]
    remove_tasks: _containers.RepeatedScalarFieldContainer[str]
    routes: bytes
    networks: bytes
    update_secrets: _containers.RepeatedScalarFieldContainer[bytes]
    remove_secrets: _containers.RepeatedScalarFieldContainer[str]
    update_configs: _containers.RepeatedScalarFieldContainer[bytes]
    remove_configs: _containers.RepeatedScalarFieldContainer[str]
    unchanged_tasks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[_Union[AssignmentsMessage.Type, str]] = ..., update_tasks: _Optional[_Iterable[bytes]] = ..., remove_tasks: _Optional[_Iterable[str]] = ..., routes: _Optional[bytes] = ..., networks: _Optional[bytes] = ..., update_secrets: _Optional[_Iterable[bytes]] = ..., remove_secrets: _Optional[_Iterable[str]] = ..., update_configs: _Optional[_Iterable[bytes]] = ..., remove_configs: _Optional[_Iterable[str]] = ..., unchanged_tasks: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskStatusUpdate(_message.Message):
    __slots__ = ("task_id", "status")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: bytes
    def __init__(self, task_id: _Optional[str] = ..., status: _Optional[bytes] = ...) -> None: ...

class UpdateTaskStatusRequest(_message.Message):
    __slots__ = ("session_id", "updates")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    updates: _containers.RepeatedCompositeFieldContainer[TaskStatusUpdate]
    def __init__(self, session_id: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[TaskStatusUpdate, _Mapping]]] = ...) -> None: ...

class UpdateTaskStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogSelector(_message.Message):
    __slots__ = ("service_ids", "task_ids", "node_ids")
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    service_ids: _containers.RepeatedScalarFieldContainer[str]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service_ids: _Optional[_Iterable[str]] = ..., task_ids: _Optional[_Iterable[str]] = ..., node_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LogSubscriptionOptions(_message.Message):
    __slots__ = ("follow", "tail", "since_ns", "stdout", "stderr")
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    follow: bool
    tail: int
    since_ns: int
    stdout: bool
    stderr: bool
    def __init__(self, follow: _Optional[bool] = ..., tail: _Optional[int] = ..., since_ns: _Optional[int] = ..., stdout: _Optional[bool] = ..., stderr: _Optional[bool] = ...) -> None: ...

class SubscriptionMessage(_message.Message):
    __slots__ = ("id", "selector", "options", "close")
    ID_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    id: str
    selector: LogSelector
    options: LogSubscriptionOptions
    close: bool
    def __init__(self, id: _Optional[str] = ..., selector: _Optional[_Union[LogSelector, _Mapping]] = ..., options: _Optional[_Union[LogSubscriptionOptions, _Mapping]] = ..., close: _Optional[bool] = ...) -> None: ...

class ListenSubscriptionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogAttr(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class LogMessage(_message.Message):
    __slots__ = ("service_id", "node_id", "task_id", "timestamp_ns", "stream", "data", "attrs")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    node_id: str
    task_id: str
    timestamp_ns: int
    stream: int
    data: bytes
    attrs: _containers.RepeatedCompositeFieldContainer[LogAttr]
    def __init__(self, service_id: _Optional[str] = ..., node_id: _Optional[str] = ..., task_id: _Optional[str] = ..., timestamp_ns: _Optional[int] = ..., stream: _Optional[int] = ..., data: _Optional[bytes] = ..., attrs: _Optional[_Iterable[_Union[LogAttr, _Mapping]]] = ...) -> None: ...

class PublishLogsMessage(_message.Message):
    __slots__ = ("subscription_id", "messages", "close")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    messages: _containers.RepeatedCompositeFieldContainer[LogMessage]
    close: bool
    def __init__(self, subscription_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[LogMessage, _Mapping]]] = ..., close: _Optional[bool] = ...) -> None: ...

class PublishLogsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubscribeLogsRequest(_message.Message):
    __slots__ = ("selector", "options")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    selector: LogSelector
    options: LogSubscriptionOptions
    def __init__(self, selector: _Optional[_Union[LogSelector, _Mapping]] = ..., options: _Optional[_Union[LogSubscriptionOptions, _Mapping]] = ...) -> None: ...

class SubscribeLogsMessage(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[LogMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[LogMessage, _Mapping]]] = ...) -> None: ...

class ControlRequest(_message.Message):
    __slots__ = ("method", "args")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    method: str
    args: bytes
    def __init__(self, method: _Optional[str] = ..., args: _Optional[bytes] = ...) -> None: ...

class ControlResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: bytes
    def __init__(self, result: _Optional[bytes] = ...) -> None: ...

class RaftMember(_message.Message):
    __slots__ = ("raft_id", "node_id", "addr")
    RAFT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    raft_id: int
    node_id: str
    addr: str
    def __init__(self, raft_id: _Optional[int] = ..., node_id: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...

class RaftChunk(_message.Message):
    __slots__ = ("data", "more")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    more: bool
    def __init__(self, data: _Optional[bytes] = ..., more: _Optional[bool] = ...) -> None: ...

class RaftSendResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JoinRaftRequest(_message.Message):
    __slots__ = ("node_id", "addr")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    addr: str
    def __init__(self, node_id: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...

class JoinRaftResponse(_message.Message):
    __slots__ = ("raft_id", "members")
    RAFT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    raft_id: int
    members: _containers.RepeatedCompositeFieldContainer[RaftMember]
    def __init__(self, raft_id: _Optional[int] = ..., members: _Optional[_Iterable[_Union[RaftMember, _Mapping]]] = ...) -> None: ...
