"""`invoke deploy --env X --check`: what only the running cloud can prove, read through the
cloud's CLI, kubectl and curl (here the fakes of fake_cloud.py): Argo CD in step with Git, the
certificate issued, the ExternalSecret synced (AWS), the public URL answering."""

from __future__ import annotations

from .test_deploy import deploy_stage


def test_a_serving_environment_passes_every_check_and_changes_nothing(world):
    deploy_stage(world)
    world.fakes.update(urls={"https://stage.todo.example.com/readyz": 200})
    before = world.snapshot()

    result = world.invoke("deploy", "--env=stage", "--check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "  health     Healthy; unhealthy: none" in result.stdout
    assert (
        "todo-do-stage is in step with Git and https://stage.todo.example.com/readyz answers."
        in result.stdout
    )
    assert world.snapshot() == before
    assert [call for call in world.calls("kubectl") if " wait " in call] == [
        "kubectl --namespace todo wait certificate/web-tls --timeout=60s --for=condition=Ready"
    ]


def test_every_failing_check_is_listed_with_what_it_said(world):
    deploy_stage(world, "aws")
    clusters = world.fakes.state["clusters"]
    clusters["todo-stage"]["todo-aws-stage"]["behaviour"] = "stuck"
    world.fakes.update(
        clusters=clusters,
        not_ready=["certificate/web-tls", "externalsecret/todo-secrets"],
        urls={"https://stage.todo.example.com/readyz": 503},
    )

    result = world.invoke("deploy", "--env=stage", "--cloud=aws", "--check")

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines()[:5] == [
        "error: stage (aws): 4 problem(s):",
        "  - Argo CD is not in step with Git (above; todo-aws-stage)",
        "  - certificate/web-tls is not Ready: error: timed out waiting for the condition on "
        "certificates/web-tls",
        "  - externalsecret/todo-secrets is not Ready: error: timed out waiting for the condition "
        "on externalsecrets/todo-secrets",
        "  - https://stage.todo.example.com/readyz: curl: (22) The requested URL returned error: "
        "503 (DNS to the load balancer, TLS, the app)",
    ]
    assert "unhealthy: Deployment/web Progressing (Waiting for rollout)" in result.stdout
