"""Secrets and configs through the control API: swarmkit's checks and Docker's words, each
refusal changing nothing."""

import base64

import pytest

from shoal.clock import FakeClock
from shoal.errors import Conflict, InvalidArgument, NotFound, OutOfSequence, ShoalError
from shoal.golang import GoError
from shoal.golang.base64 import decode_std
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.controlapi.filters import Filters
from shoal.store import MemoryStore


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rpc(code: str, desc: str) -> str:
    return f"rpc error: code = {code} desc = {desc}"


@pytest.fixture
def control():
    store = MemoryStore(clock=FakeClock())
    yield ControlAPI(store, store.clock)
    store.close()


def service_spec(name="web", secrets=None, configs=None):
    container = {"Image": "busybox:latest"}
    if secrets is not None:
        container["Secrets"] = secrets
    if configs is not None:
        container["Configs"] = configs
    return {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": container},
        "Mode": {"Replicated": {"Replicas": 1}},
    }


def secret_ref(secret, target=None, **file):
    return {
        "File": {"Name": target or secret.Spec.Name, "UID": "0", "GID": "0", "Mode": 0o444, **file},
        "SecretID": secret.ID,
        "SecretName": secret.Spec.Name,
    }


def config_ref(config, target=None):
    return {
        "File": {"Name": target or config.Spec.Name, "UID": "0", "GID": "0", "Mode": 0o444},
        "ConfigID": config.ID,
        "ConfigName": config.Spec.Name,
    }


# --- create ----------------------------------------------------------------------------------

BAD_SECRETS = [
    ({"Data": b64(b"x")}, rpc("InvalidArgument", "name must be provided")),
    (
        {"Name": "bad name", "Data": b64(b"x")},
        rpc(
            "InvalidArgument",
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end "
            "character must be [a-zA-Z0-9]",
        ),
    ),
    (
        {"Name": "-dash", "Data": b64(b"x")},
        rpc(
            "InvalidArgument",
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end "
            "character must be [a-zA-Z0-9]",
        ),
    ),
    (
        {"Name": "a" * 65, "Data": b64(b"x")},
        rpc(
            "InvalidArgument",
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end "
            "character must be [a-zA-Z0-9]",
        ),
    ),
    (
        {"Name": "s"},
        rpc("InvalidArgument", "secret data must be larger than 0 and less than 512000 bytes"),
    ),
    (
        {"Name": "s", "Data": b64(b"x" * 500 * 1024)},
        rpc("InvalidArgument", "secret data must be larger than 0 and less than 512000 bytes"),
    ),
    (
        {"Name": "s", "Data": b64(b"x"), "Driver": {"Name": ""}},
        rpc("InvalidArgument", "secret driver must have a name"),
    ),
    (
        {"Name": "s", "Data": b64(b"x"), "Driver": {"Name": "vault"}},
        rpc("Unknown", 'plugin "vault" not found'),
    ),
    ({"Name": "s", "Data": "eHg"}, "illegal base64 data at input byte 0"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SECRETS)
async def test_bad_secrets_are_refused_in_swarmkits_words(control, spec, message):
    before = control.store.version
    with pytest.raises(ShoalError) as err:
        await control.create_secret(spec)
    assert str(err.value) == message
    assert control.store.version == before
    assert control.list_secrets() == []


BAD_CONFIGS = [
    ({"Data": b64(b"x")}, rpc("InvalidArgument", "name must be provided")),
    (
        {"Name": "c"},
        rpc("InvalidArgument", "config data must be larger than 0 and less than 1024000 bytes"),
    ),
    (
        {"Name": "c", "Data": b64(b"x" * 1000 * 1024)},
        rpc("InvalidArgument", "config data must be larger than 0 and less than 1024000 bytes"),
    ),
]


@pytest.mark.parametrize(("spec", "message"), BAD_CONFIGS)
async def test_bad_configs_are_refused_in_swarmkits_words(control, spec, message):
    before = control.store.version
    with pytest.raises(InvalidArgument) as err:
        await control.create_config(spec)
    assert str(err.value) == message
    assert control.store.version == before


async def test_the_largest_data_allowed_is_one_byte_under_the_limit(control):
    await control.create_secret({"Name": "s", "Data": b64(b"x" * (500 * 1024 - 1))})
    await control.create_config({"Name": "c", "Data": b64(b"x" * (1000 * 1024 - 1))})


async def test_a_name_taken_in_any_case_is_already_exists(control):
    await control.create_secret({"Name": "db-pass", "Data": b64(b"x")})
    before = control.store.version
    with pytest.raises(Conflict) as err:
        await control.create_secret({"Name": "DB-pass", "Data": b64(b"y")})
    assert str(err.value) == rpc("AlreadyExists", "secret DB-pass already exists")
    assert err.value.status == 409
    assert control.store.version == before
    # A config may have a secret's name: they are different kinds.
    await control.create_config({"Name": "db-pass", "Data": b64(b"x")})
    with pytest.raises(Conflict, match="config db-pass already exists"):
        await control.create_config({"Name": "db-pass", "Data": b64(b"x")})


async def test_a_secrets_data_is_stored_but_never_shown(control):
    secret = await control.create_secret({"Name": "s", "Data": b64(b"hush")})
    assert decode_std(control.get_secret("s").Spec.Data or "") == b"hush"
    shown = control.get_secret(secret.ID).to_api()
    assert shown["Spec"] == {"Name": "s", "Labels": {}}
    assert all("Data" not in s.to_api()["Spec"] for s in control.list_secrets())
    config = await control.create_config({"Name": "c", "Data": b64(b"seen")})
    assert config.to_api()["Spec"] == {"Name": "c", "Labels": {}, "Data": b64(b"seen")}


# --- get and list ----------------------------------------------------------------------------


async def test_found_by_id_then_name_in_any_case_then_id_prefix(control):
    secret = await control.create_secret({"Name": "Alpha", "Data": b64(b"x")})
    assert control.get_secret(secret.ID).ID == secret.ID
    assert control.get_secret("alpha").ID == secret.ID
    assert control.get_secret(secret.ID[:3]).ID == secret.ID
    with pytest.raises(NotFound) as err:
        control.get_secret("nosuch")
    assert str(err.value) == "secret nosuch not found"
    with pytest.raises(NotFound, match=r"^config Alpha not found$"):
        control.get_config("Alpha")


async def test_an_id_prefix_of_several_is_ambiguous(control):
    ids = set()
    while True:
        secret = await control.create_secret({"Name": f"s{len(ids)}", "Data": b64(b"x")})
        prefix = next((i[0] for i in ids if i[0] == secret.ID[0]), None)
        ids.add(secret.ID)
        if prefix is not None:
            break
    matches = sum(1 for i in ids if i.startswith(prefix))
    with pytest.raises(InvalidArgument) as err:
        control.get_secret(prefix)
    assert str(err.value) == f"secret {prefix} is ambiguous ({matches} matches found)"


async def test_list_filters_as_docker(control):
    await control.create_secret({"Name": "app-key", "Data": b64(b"x"), "Labels": {"t": "1"}})
    await control.create_secret(
        {"Name": "app-cert", "Data": b64(b"x"), "Labels": {"t": "2", "x": ""}}
    )
    c = await control.create_secret({"Name": "db", "Data": b64(b"x")})

    def names(**filters):
        return sorted(s.Spec.Name for s in control.list_secrets(Filters(filters)))

    assert names() == ["app-cert", "app-key", "db"]
    assert names(name=["APP-"]) == ["app-cert", "app-key"]
    assert names(names=["app"]) == []
    assert names(names=["DB"]) == ["db"]
    # names, name and id select what matches any of them.
    assert names(names=["db"], name=["app-k"]) == ["app-key", "db"]
    assert names(id=[c.ID]) == ["db"]
    assert names(id=[c.ID.upper()]) == []  # an ID prefix keeps its case
    assert names(label=["t"]) == ["app-cert", "app-key"]
    assert names(label=["t=2"]) == ["app-cert"]
    assert names(label=["t=", "x"]) == ["app-cert"]
    with pytest.raises(InvalidArgument, match=r"^Invalid filter 'bogus'$"):
        control.list_secrets(Filters({"bogus": ["1"]}))
    # Configs have no "names" filter in Docker 20.10.
    with pytest.raises(InvalidArgument, match=r"^Invalid filter 'names'$"):
        control.list_configs(Filters({"names": ["x"]}))


# --- update ----------------------------------------------------------------------------------


async def test_only_labels_may_change(control):
    secret = await control.create_secret({"Name": "s", "Data": b64(b"x")})
    version = secret.Version.Index
    bad = [
        {"Name": "other", "Labels": {"a": "b"}},
        {"Name": "s", "Data": b64(b"y"), "Labels": {"a": "b"}},
    ]
    for spec in bad:
        before = control.store.version
        with pytest.raises(InvalidArgument) as err:
            await control.update_secret("s", version, spec)
        assert str(err.value) == rpc("InvalidArgument", "only updates to Labels are allowed")
        assert control.store.version == before
    # The same data, a driver or templating sent along: only the labels change.
    updated = await control.update_secret(
        secret.ID, version, {"Name": "s", "Data": b64(b"x"), "Labels": {"a": "b"}}
    )
    assert updated.Spec.Labels == {"a": "b"}
    assert control.get_secret("s").Spec.Labels == {"a": "b"}
    assert decode_std(control.get_secret("s").Spec.Data or "") == b"x"
    assert updated.Version.Index > version


async def test_an_update_with_a_stale_version_is_out_of_sequence(control):
    config = await control.create_config({"Name": "c", "Data": b64(b"x")})
    await control.update_config("c", config.Version.Index, {"Name": "c", "Labels": {"a": "1"}})
    before = control.store.version
    with pytest.raises(OutOfSequence) as err:
        await control.update_config("c", config.Version.Index, {"Name": "c", "Labels": {}})
    assert str(err.value) == rpc("Unknown", "update out of sequence")
    assert control.store.version == before
    assert control.get_config("c").Spec.Labels == {"a": "1"}


# --- services using them, and remove ---------------------------------------------------------


async def test_a_service_takes_references_to_secrets_and_configs(control):
    secret = await control.create_secret({"Name": "s", "Data": b64(b"x")})
    config = await control.create_config({"Name": "c", "Data": b64(b"x")})
    svc = await control.create_service(
        service_spec(
            secrets=[secret_ref(secret), secret_ref(secret, "other", UID="100", Mode=0o400)],
            configs=[config_ref(config, "/etc/c")],
        )
    )
    shown = svc.to_api()["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert shown["Secrets"][1] == {
        "File": {"Name": "other", "UID": "100", "GID": "0", "Mode": 0o400},
        "SecretID": secret.ID,
        "SecretName": "s",
    }
    assert shown["Configs"][0]["File"]["Name"] == "/etc/c"


async def test_bad_references_are_refused_and_nothing_is_created(control):
    secret = await control.create_secret({"Name": "s", "Data": b64(b"x")})
    config = await control.create_config({"Name": "c", "Data": b64(b"x")})
    ghost = dict(secret_ref(secret), SecretID="nosuchid", SecretName="ghost")
    renamed = dict(secret_ref(secret, "elsewhere"), SecretName="not-its-name")
    cases = [
        (service_spec(secrets=[ghost]), rpc("InvalidArgument", "secret not found: ghost")),
        (
            service_spec(secrets=[ghost, renamed]),
            rpc("InvalidArgument", "secrets not found: ghost, not-its-name"),
        ),
        (
            service_spec(configs=[dict(config_ref(config), ConfigID="x", ConfigName="nope")]),
            rpc("InvalidArgument", "config not found: nope"),
        ),
        (
            service_spec(secrets=[secret_ref(secret), secret_ref(secret)]),
            rpc("InvalidArgument", "secret references 's' and 's' have a conflicting target: 's'"),
        ),
        (
            service_spec(configs=[config_ref(config, "/x"), config_ref(config, "/x")]),
            rpc("InvalidArgument", "config references 'c' and 'c' have a conflicting target: '/x'"),
        ),
        (
            service_spec(secrets=[dict(secret_ref(secret), SecretID="")]),
            rpc("InvalidArgument", "malformed secret reference"),
        ),
        (
            service_spec(secrets=[{"SecretID": secret.ID, "SecretName": "s"}]),
            rpc("InvalidArgument", "malformed secret reference, no target provided"),
        ),
        (
            service_spec(secrets=[dict(secret_ref(secret), File={"Name": ""})]),
            rpc(
                "InvalidArgument",
                "malformed file secret reference, invalid target file name provided",
            ),
        ),
        (
            service_spec(configs=[{"ConfigID": config.ID, "ConfigName": "c"}]),
            "invalid Config: either File or Runtime should be set",
        ),
    ]
    for spec, message in cases:
        before = control.store.version
        with pytest.raises(InvalidArgument) as err:
            await control.create_service(spec)
        assert str(err.value) == message
        assert control.store.version == before
    assert control.list_services() == []


async def test_remove_is_refused_while_services_use_it(control):
    secret = await control.create_secret({"Name": "s", "Data": b64(b"x")})
    config = await control.create_config({"Name": "c", "Data": b64(b"x")})
    web = await control.create_service(
        service_spec("web", secrets=[secret_ref(secret)], configs=[config_ref(config)])
    )
    await control.create_service(service_spec("api", secrets=[secret_ref(secret)]))
    before = control.store.version
    with pytest.raises(InvalidArgument) as err:
        await control.remove_secret("s")
    users = sorted(control.list_services(), key=lambda s: s.ID)
    assert str(err.value) == rpc(
        "InvalidArgument",
        "secret 's' is in use by the following services: " + ", ".join(s.Spec.Name for s in users),
    )
    with pytest.raises(InvalidArgument) as err:
        await control.remove_config(config.ID)
    assert str(err.value) == rpc(
        "InvalidArgument", "config 'c' is in use by the following service: web"
    )
    assert control.store.version == before

    # Once no service names it, it goes.
    current = control.get_service("web")
    spec = current.Spec.model_dump(mode="json", exclude_none=True)
    spec["TaskTemplate"]["ContainerSpec"].pop("Configs")
    await control.update_service(web.ID, current.Version.Index, spec)
    await control.remove_config("c")
    with pytest.raises(NotFound, match=r"^config c not found$"):
        control.get_config("c")
    with pytest.raises(NotFound, match=r"^secret nosuch not found$"):
        await control.remove_secret("nosuch")


async def test_an_update_naming_a_missing_secret_is_refused(control):
    secret = await control.create_secret({"Name": "s", "Data": b64(b"x")})
    svc = await control.create_service(service_spec())
    spec = service_spec(secrets=[dict(secret_ref(secret), SecretID="gone")])
    before = control.store.version
    with pytest.raises(InvalidArgument, match=r"secret not found: s$"):
        await control.update_service(svc.ID, svc.Version.Index, spec)
    assert control.store.version == before


# --- Go's base64 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("eHg=", b"xx"),
        ("eA==", b"x"),
        ("aGVs\nbG8=", b"hello"),
        ("", b""),
        ("eHg", "illegal base64 data at input byte 0"),
        ("eHg=x", "illegal base64 data at input byte 4"),
        ("eHg==", "illegal base64 data at input byte 4"),
        ("eH g=", "illegal base64 data at input byte 2"),
        ("!!", "illegal base64 data at input byte 0"),
        ("eA=", "illegal base64 data at input byte 3"),
        ("e===", "illegal base64 data at input byte 1"),
    ],
)
def test_base64_as_go_decodes_it(text, result):
    if isinstance(result, bytes):
        assert decode_std(text) == result
    else:
        with pytest.raises(GoError) as err:
            decode_std(text)
        assert str(err.value) == result
