"""Where a task sees its secrets and configs, and what bytes it reads (templates expanded)."""

import base64

import pytest

from shoal.agent.exec.base import NodeContext
from shoal.agent.exec.dependencies import DependencyStore
from shoal.agent.exec.payloads import PayloadError, file_bytes
from shoal.agent.exec.task_files import FileTargetError, target_path, task_files
from shoal.api.objects import Config, Secret, Task


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("kind", "name", "path"),
    [
        ("secret", "db", "/run/secrets/db"),
        ("secret", "/etc/db.key", "/etc/db.key"),
        ("secret", "sub/db", "/run/secrets/sub/db"),
        ("config", "app.conf", "/app.conf"),
        ("config", "/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf"),
        ("config", "../../etc/x", "/etc/x"),  # normalised: never above the task's /
        ("secret", "//db", "/db"),
    ],
)
def test_targets_are_where_docker_mounts_them(kind, name, path):
    assert target_path(kind, name) == path


def make_task(secrets=(), configs=(), env=()) -> Task:
    return Task.model_validate(
        {
            "ID": "task1",
            "ServiceID": "svc1",
            "Slot": 3,
            "NodeID": "node1",
            "ServiceAnnotations": {"Name": "web", "Labels": {"tier": "front"}},
            "Spec": {
                "ContainerSpec": {
                    "Image": "busybox",
                    "Env": list(env),
                    "Secrets": list(secrets),
                    "Configs": list(configs),
                }
            },
        }
    )


def sref(sid: str, name: str, **file) -> dict:
    return {"SecretID": sid, "SecretName": sid, "File": {"Name": name, **file}}


def cref(cid: str, name: str | None, **file) -> dict:
    ref: dict = {"ConfigID": cid, "ConfigName": cid}
    if name is not None:
        ref["File"] = {"Name": name, **file}
    else:
        ref["Runtime"] = {}
    return ref


def test_files_carry_owner_and_mode_and_skip_runtime_configs():
    task = make_task(
        secrets=[sref("s1", "db", UID="1000", GID="50", Mode=0o400)],
        configs=[cref("c1", "app.conf"), cref("c2", None)],
    )
    files = task_files(task)
    assert [(f.kind, f.ref_id, f.path, f.uid, f.gid, f.mode) for f in files] == [
        ("secret", "s1", "/run/secrets/db", 1000, 50, 0o400),
        ("config", "c1", "/app.conf", 0, 0, 0o444),
    ]


def test_an_owner_that_is_not_a_number_is_refused_as_docker_does():
    with pytest.raises(FileTargetError, match=r'strconv.Atoi: parsing "www": invalid syntax'):
        task_files(make_task(secrets=[sref("s1", "db", UID="www")]))


def node() -> NodeContext:
    return NodeContext(
        node_id="node1",
        hostname="host1",
        addr="10.0.0.1",
        platform_os="linux",
        platform_arch="x86_64",
    )


def store_with(*objs) -> DependencyStore:
    store = DependencyStore()
    store.apply(
        complete=True,
        secrets=[o for o in objs if isinstance(o, Secret)],
        remove_secrets=[],
        configs=[o for o in objs if isinstance(o, Config)],
        remove_configs=[],
    )
    return store


def read(task: Task, store: DependencyStore, index: int = 0) -> bytes:
    return file_bytes(task_files(task)[index], task, node(), store.for_task(task))


def test_plain_data_is_given_as_it_is():
    secret = Secret.model_validate({"ID": "s1", "Spec": {"Name": "db", "Data": b64("{{x}}")}})
    task = make_task(secrets=[sref("s1", "db")])
    assert read(task, store_with(secret)) == b"{{x}}"


def test_a_golang_template_sees_swarms_placeholders_and_functions():
    source = (
        "{{.Service.ID}} {{.Service.Name}} {{.Service.Labels.tier}} {{.Node.ID}} "
        "{{.Node.Hostname}} {{.Node.Platform.OS}}/{{.Node.Platform.Architecture}} "
        '{{.Task.ID}} {{.Task.Name}} {{.Task.Slot}} {{env "MODE"}} [{{env "NONE"}}] '
        '{{secret "pw"}} {{config "base.conf"}}'
    )
    templated = Config.model_validate(
        {"ID": "c1", "Spec": {"Name": "app", "Data": b64(source), "Templating": {"Name": "golang"}}}
    )
    base = Config.model_validate({"ID": "c2", "Spec": {"Name": "base", "Data": b64("B")}})
    pw = Secret.model_validate({"ID": "s1", "Spec": {"Name": "pw", "Data": b64("hunter2")}})
    task = make_task(
        secrets=[sref("s1", "pw")],
        configs=[cref("c1", "app.conf"), cref("c2", "base.conf")],
        env=["MODE=blue"],
    )
    out = read(task, store_with(templated, base, pw), index=1)
    assert out == (b"svc1 web front node1 host1 linux/x86_64 task1 web.3.task1 3 blue [] hunter2 B")


def expansion_error(source: str, **task_args) -> str:
    secret = Secret.model_validate(
        {"ID": "s1", "Spec": {"Name": "t", "Data": b64(source), "Templating": {"Name": "golang"}}}
    )
    task = make_task(secrets=[sref("s1", "t")], **task_args)
    with pytest.raises(PayloadError) as err:
        read(task, store_with(secret))
    return str(err.value)


def test_template_errors_read_as_dockers():
    # Checked against Docker 20.10's service ps errors.
    assert expansion_error('X={{secret "nope"}}') == (
        "unable to get secret from secret store: failed to expand templated secret s1: "
        'template: expansion:1:4: executing "expansion" at <secret "nope">: '
        "error calling secret: secret target nope not found"
    )
    # Go places a field chain at its second element: col 12 is ".Labels".
    source = 'a={{index .Service.Labels "x"}}\nb={{.Service.Labels.zz}}'
    assert expansion_error(source).endswith(
        'template: expansion:2:12: executing "expansion" at <.Service.Labels.zz>: '
        'map has no entry for key "zz"'
    )
    assert expansion_error('{{secret "aVeryLongTargetName"}}').endswith(
        'at <secret "aVeryLongTar...>: error calling secret: '
        "secret target aVeryLongTargetName not found"
    )


def test_a_task_reads_only_what_it_references():
    other = Secret.model_validate({"ID": "s9", "Spec": {"Name": "x", "Data": b64("x")}})
    task = make_task(secrets=[sref("s1", "db")])
    with pytest.raises(PayloadError, match="unable to get secret from secret store: secret s1 "):
        read(task, store_with(other))
    with pytest.raises(Exception, match="task not authorized to access secret s9"):
        store_with(other).for_task(task).secret("s9")


def test_an_unknown_templating_driver_is_refused():
    secret = Secret.model_validate(
        {"ID": "s1", "Spec": {"Name": "t", "Data": b64("x"), "Templating": {"Name": "jinja"}}}
    )
    task = make_task(secrets=[sref("s1", "t")])
    with pytest.raises(PayloadError, match="failed to expand templated secret s1: unrecognized"):
        read(task, store_with(secret))


def test_the_store_forgets_what_the_dispatcher_removes():
    a = Secret.model_validate({"ID": "a"})
    b = Secret.model_validate({"ID": "b"})
    store = store_with(a, b)
    store.apply(complete=False, secrets=[], remove_secrets=["a"], configs=[], remove_configs=[])
    assert set(store.secrets) == {"b"}
    store.apply(complete=True, secrets=[a], remove_secrets=[], configs=[], remove_configs=[])
    assert set(store.secrets) == {"a"}
