"""`invoke deploy --env X --check`: what only the running cloud can prove, read through the
cloud's CLI, kubectl and curl (here the fakes of fake_cloud.py): Argo CD synced and healthy,
the certificate issued, the ExternalSecret synced (AWS), the public URL answering."""

from __future__ import annotations

from .conftest import World


def deploy_stage(world: World, cloud: str = "do") -> None:
    result = world.invoke("deploy", "--env=stage", f"--cloud={cloud}", "--skip-tests")
    assert result.returncode == 0, result.stdout + result.stderr
    world.fakes.calls()


def test_a_serving_environment_passes_every_check_and_changes_nothing(world):
    deploy_stage(world)
    world.fakes.update(urls={"https://stage.todo.example.com/readyz": 200})
    before = world.snapshot()

    result = world.invoke("deploy", "--env=stage", "--check")

    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "ok  Argo CD: Synced",
        "ok  Argo CD: Healthy",
        "ok  certificate web-tls Ready (cert-manager)",
    ):
        assert line in result.stdout
    assert "stage (do) serves stage.todo.example.com" in result.stdout
    assert world.snapshot() == before
    waits = [call for call in world.calls("kubectl") if " wait " in f" {call} "]
    assert waits == [
        "kubectl --namespace argocd wait application todo-do-stage "
        "--for=jsonpath={.status.sync.status}=Synced --timeout=60s",
        "kubectl --namespace argocd wait application todo-do-stage "
        "--for=jsonpath={.status.health.status}=Healthy --timeout=60s",
        "kubectl --namespace todo wait certificate web-tls --for=condition=Ready --timeout=60s",
    ]


def test_every_failing_check_is_listed_with_what_it_said(world):
    deploy_stage(world, "aws")
    world.fakes.update(
        not_ready=["certificate/web-tls", "externalsecret/todo-secrets"],
        urls={"https://stage.todo.example.com/readyz": 503},
    )

    result = world.invoke("deploy", "--env=stage", "--cloud=aws", "--check")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: stage (aws) is not serving" in result.stderr
    for problem in (
        "certificate web-tls Ready (cert-manager): error: timed out waiting for the condition",
        "ExternalSecret todo-secrets synced: error: timed out waiting for the condition",
        "https://stage.todo.example.com/readyz: curl: (22) The requested URL returned error: 503",
    ):
        assert problem in result.stderr
    assert "ok  Argo CD: Healthy" in result.stdout


def test_an_environment_without_its_application_fails_the_argo_cd_checks(world):
    clusters = world.fakes.state["clusters"]
    del clusters["todo-stage"]["todo-do-stage"]
    world.fakes.update(clusters=clusters)

    result = world.invoke("deploy", "--env=stage", "--check")

    assert result.returncode == 1
    assert (
        'Argo CD: Synced: Error from server (NotFound): applications.argoproj.io "todo-do-stage"'
        in (result.stderr)
    )
    assert "Could not resolve host: stage.todo.example.com" in result.stderr
