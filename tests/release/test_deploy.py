"""`invoke deploy` and `invoke image.push` in a clone with a bare remote and a fake cloud.

Stage builds HEAD once, pushes it and pins its digest in a commit of its own; prod promotes
exactly the image stage runs, and only HEAD's code. Every guard refuses before anything
changes, all problems at once, each with its fix; a dry run prints the whole plan anyway.
"""

from __future__ import annotations

import sys

from .conftest import AWS_REPOSITORY, DO_REPOSITORY, World

STAGE_OVERLAY = "kustomize/overlays/do/stage/kustomization.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stderr


def changed_lines(world: World, commit: str = "HEAD") -> list[str]:
    """The +/- lines of a commit."""
    diff = world.git("show", "--format=", "--unified=0", commit).splitlines()
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def deploy_stage(world: World, cloud: str = "do") -> None:
    """Stage deployed on `cloud`, its calls forgotten."""
    ok(world.invoke("deploy", "--env=stage", f"--cloud={cloud}", "--skip-tests"))
    world.fakes.calls()


def test_stage_builds_head_once_pins_its_digest_in_one_commit_and_waits_for_argo_cd(world):
    head, main = world.git("rev-parse", "HEAD"), world.remote_git("rev-parse", "main")

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests", "--wait"))

    (build,) = [call for call in world.calls("docker") if " build " in call]
    assert f"--build-arg=REVISION={head}" in build
    digest = world.fakes.state["registry"]["images"][f"{DO_REPOSITORY}:{head}"]
    # One commit on HEAD, one file, the entry's tag and digest only, comments kept.
    assert world.git("log", "--format=%P", "-1") == head
    assert world.git("show", "--name-only", "--format=", "HEAD") == STAGE_OVERLAY
    assert changed_lines(world) == [
        "-    newTag: 0.1.0",
        f"+    digest: {digest}",
        f"+    newTag: {head}",
    ]
    message = world.git("log", "-1", "--format=%B").splitlines()
    assert message[0] == f"Deploy todo {head[:12]} to stage (do)"
    assert {"Environment: do/stage", f"Image: {DO_REPOSITORY}:{head}@{digest}"} <= set(message)
    # Pushed to the branch stage's Argo CD follows, and nowhere else.
    assert world.remote_git("rev-parse", "develop") == world.git("rev-parse", "HEAD")
    assert world.remote_git("rev-parse", "main") == main
    assert f"todo-do-stage is Synced and Healthy with todo {head[:12]}" in output


def test_the_same_code_is_not_built_or_deployed_twice(world):
    head = world.git("rev-parse", "HEAD")
    pushed = "sha256:" + "ab" * 32
    world.fakes.update(registry={"logged_in": [], "images": {f"{DO_REPOSITORY}:{head}": pushed}})

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests"))
    assert "in the registry already (built once per commit)" in output
    assert f"digest: {pushed}" in world.overlay("do", "stage")

    world.commit_change("docs/contract.md")  # not an image input
    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests"))
    assert "Nothing to deploy: it runs todo" in output
    assert not [call for call in world.calls("docker") if " build " in call]
    assert world.git("log", "-1", "--format=%s") == "Change docs/contract.md"


def test_prod_promotes_the_exact_image_stage_runs_without_a_build(world):
    deploy_stage(world)
    stage_entry = world.overlay("do", "stage").split("images:")[1].split("\n\n")[0]
    world.merge_develop_into_main()

    output = ok(world.invoke("deploy", "--env=prod", "--yes", "--wait"))

    assert not [call for call in world.calls("docker") if " build " in call]
    assert world.overlay("do", "prod").split("images:")[1].split("\n\n")[0] == stage_entry
    assert "Promoted-from: do/stage" in world.git("log", "-1", "--format=%B")
    assert world.remote_git("rev-parse", "main") == world.git("rev-parse", "HEAD")
    assert "built from HEAD's code: promoting it, no rebuild" in output


def test_prod_refuses_code_that_stage_does_not_run_and_a_stage_without_an_image(world):
    world.git("switch", "--quiet", "main")
    error = refused(world.invoke("deploy", "--env=prod", "--yes"))
    assert "origin/develop records no deployed image for stage (do)" in error
    assert "Fix: invoke deploy --env stage --cloud do" in error

    world.git("switch", "--quiet", "develop")
    deploy_stage(world)
    world.merge_develop_into_main()
    world.commit_change("app/config/urls.py", branch="main")
    main = world.remote_git("rev-parse", "main")
    error = refused(world.invoke("deploy", "--env=prod", "--yes"))
    assert (
        "stage (do) does not run this commit" in error and "differs in app/config/urls.py" in error
    )
    assert "Fix: deploy this code to stage first (merge it into develop)" in error
    assert world.remote_git("rev-parse", "main") == main
    assert not [call for call in world.calls() if "login" in call]


def test_prod_asks_before_it_changes_anything(world):
    deploy_stage(world)
    world.merge_develop_into_main()
    before = world.snapshot()

    error = refused(world.invoke("deploy", "--env=prod"))  # stdin is not a terminal

    assert "error: no terminal to confirm on. Fix: run again with --yes" in error
    assert world.snapshot() == before


def test_a_dry_run_prints_the_plan_and_changes_nothing(world):
    before = world.snapshot()
    head = world.git("rev-parse", "HEAD")

    output = ok(world.invoke("deploy", "--env=stage", "--dry-run", "--wait"))

    assert world.snapshot() == before
    for planned in (
        "would run: uv run invoke test",
        "would run: doctl registry login --expiry-seconds 1800",
        "would run: docker buildx build --target=runtime --platform=linux/amd64 "
        f"--tag={DO_REPOSITORY}:{head}",
        f"+    newTag: {head}",
        f"would run: cosign sign --yes '{DO_REPOSITORY}@<pushed-digest>'",
        "would run: cosign attest --yes --type slsaprovenance --predicate ",
        "+    digest: <pushed-digest>",
        f"would run: git commit --quiet -m 'Deploy todo {head[:12]} to stage (do)' "
        "'--trailer=Environment: do/stage'",
        "would run: git push --quiet origin HEAD:refs/heads/develop",
        "would run: kubectl --namespace argocd wait application todo-do-stage --timeout=600s "
        "'--for=jsonpath={.status.health.status}=Healthy'",
        "(dry run: nothing changed)",
    ):
        assert planned in output
    # Only reads ran: git, the credentials check, the renderer.
    assert world.calls("docker", "doctl") == ["doctl account get --format Email --no-header"]


def test_every_problem_is_listed_with_its_fix_and_nothing_changes(world):
    world.fakes.update(do_token=False)
    world.fakes.remove("docker")
    world.git("switch", "--quiet", "main")
    world.git("commit", "--quiet", "--allow-empty", "-m", "Not pushed yet")
    (world.work / "app" / "new_module.py").write_text("# not committed\n")
    before = world.snapshot()

    error = refused(world.invoke("deploy", "--env=stage", "--dry-run", image_repository_do=""))

    assert error.splitlines()[0] == "error: 6 problem(s), nothing changed:"
    for problem in (
        "release.image_repository.do is unset. Fix: set it to `terraform -chdir=terraform/do/",
        "`docker` is not installed. Fix: install Docker (https://docs.docker.com/",
        "uncommitted changes (app/new_module.py); only commits ship. Fix: commit or stash",
        "stage (do) deploys from develop. Fix: git switch develop",
        "HEAD is 1 commit(s) ahead of origin/develop, 0 behind. A release ships what the remote",
        "doctl has no working credentials (Error: Unable to initialize",
        "Fix: run `doctl auth init`",
    ):
        assert problem in error
    assert world.snapshot() == before
    assert not [call for call in world.calls() if "login" in call or " build " in call]


def test_failing_tests_stop_the_deploy_and_passing_ones_let_it_go_on(world):
    failing = f"{sys.executable} -c 'raise SystemExit(1)'"
    error = refused(world.invoke("deploy", "--env=stage", test_command=failing))
    assert "error: the tests failed; nothing was deployed" in error
    assert not [call for call in world.calls() if " build " in call]

    passing = f"{sys.executable} -c 'print(\"412 passed\")'"
    assert "412 passed" in ok(world.invoke("deploy", "--env=stage", test_command=passing))
    assert [call for call in world.calls() if " build " in call]


def test_waiting_ends_in_a_clear_failure_with_the_way_back(world):
    head = world.git("rev-parse", "HEAD")
    clusters = world.fakes.state["clusters"]
    clusters["todo-stage"]["todo-do-stage"]["behaviour"] = "stuck"
    world.fakes.update(clusters=clusters)

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests", "--wait", "--timeout=1"))

    assert f"todo-do-stage did not run todo {head[:12]} Synced and Healthy within 1 s" in error
    assert "invoke argocd.status --env stage --cloud do says why; invoke rollback" in error
    assert "timed out waiting for the condition" in error


def test_waiting_before_the_apps_stack_made_the_application_says_how_to_make_it(world):
    clusters = world.fakes.state["clusters"]
    del clusters["todo-stage"]["todo-do-stage"]  # the first release: no Application yet
    world.fakes.update(clusters=clusters)

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests", "--wait"))

    assert "cannot refresh Application todo-do-stage; the apps stack creates it" in error
    assert "Fix: invoke tf.plan --stack do/apps --env stage, then invoke tf.apply" in error
    assert "(NotFound)" in error
    assert world.remote_git("rev-parse", "develop") == world.git("rev-parse", "HEAD"), "pushed"


def test_aws_logs_in_to_ecr_with_the_password_on_stdin_and_finds_the_cluster_region(world):
    head = world.git("rev-parse", "HEAD")

    ok(world.invoke("deploy", "--env=stage", "--cloud=aws", "--skip-tests", "--wait"))

    calls = world.fakes.calls()
    (login,) = [call for call in calls if call["args"][:1] == ["login"]]
    assert login["stdin"].strip() == world.fakes.state["aws"]["password"]  # never in argv
    regions = {
        call["args"][call["args"].index("--region") + 1]
        for call in calls
        if "--region" in call["args"]
    }
    assert regions == {"eu-central-1"}
    assert f"newName: {AWS_REPOSITORY}\n" in world.overlay("aws", "stage")
    assert f"newTag: {head}\n" in world.overlay("aws", "stage")


def test_a_push_that_lost_the_race_is_rebased_onto_the_remote(world, tmp_path):
    teammate = tmp_path / "teammate"
    world.git("clone", "--quiet", "--branch", "develop", str(world.remote), str(teammate))
    world.fakes.update(teammate_pushes_during_build=str(teammate))

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "origin/develop moved on; rebasing the release commit onto it" in output
    subjects = world.remote_git("log", "--format=%s", "-2", "develop").splitlines()
    assert subjects[0].startswith("Deploy todo") and subjects[1] == "A teammate's commit"


def test_a_remote_argo_cd_does_not_pull_from_is_refused(world):
    source = world.work / "kustomize" / "argocd" / "base" / "source.yaml"
    text = source.read_text().replace(f"file://{world.remote}", "https://github.com/acme/todo.git")
    source.write_text(text)
    world.git("commit", "--quiet", "-am", "Point Argo CD elsewhere")
    world.git("push", "--quiet", "origin", "develop")

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert (
        "Argo CD (todo-do-stage) pulls https://github.com/acme/todo.git, but `origin` is" in error
    )
    assert "Fix: set repoURL in kustomize/argocd/base/source.yaml" in error


def test_image_push_tags_the_commit_and_pushes_it_once(world):
    world.fakes.update(registry={"logged_in": ["registry.digitalocean.com"], "images": {}})
    head = world.git("rev-parse", "HEAD")

    first = ok(world.invoke("image.push", f"--repository={DO_REPOSITORY}"))
    second = ok(world.invoke("image.push", f"--repository={DO_REPOSITORY}"))

    digest = world.fakes.state["registry"]["images"][f"{DO_REPOSITORY}:{head}"]
    assert first.splitlines()[-1] == f"Pushed {DO_REPOSITORY}:{head}@{digest}"
    assert second.splitlines()[-1].startswith("Already in the registry (built once per commit)")
    assert len([call for call in world.calls("docker") if " build " in call]) == 1

    (world.work / "app" / "config" / "urls.py").write_text("# edited\n")
    error = refused(world.invoke("image.push", f"--repository={DO_REPOSITORY}"))
    assert "error: uncommitted changes (app/config/urls.py); only commits ship." in error


def test_stage_on_app_platform_pins_every_component_to_the_digest_and_records_it(world):
    """release.do_stage: app-platform: the same build once, then `doctl apps update --wait`
    with each component at the pushed digest; the overlay records it for prod's promotion.
    Without the app, the error names the stack that creates it."""
    image = {"registry_type": "DOCR", "repository": "todo", "tag": "0" * 40}
    spec = {
        "name": "todo-stage",
        "services": [{"name": "web", "image": dict(image)}],
        "workers": [{"name": n, "image": dict(image)} for n in ("worker", "beat")],
        "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", "image": dict(image)}],
    }
    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests", do_stage="app-platform"))
    assert "no App Platform app todo-stage. Fix: invoke tf.plan --stack do/app-platform" in error
    world.fakes.update(app_platform={"todo-stage": {"id": "6f1e-app", "spec": spec}})
    head = world.git("rev-parse", "HEAD")

    ok(world.invoke("deploy", "--env=stage", "--skip-tests", do_stage="app-platform"))

    digest = world.fakes.state["registry"]["images"][f"{DO_REPOSITORY}:{head}"]
    deployed = world.fakes.state["app_platform"]["todo-stage"]["spec"]
    images = [c["image"] for kind in ("services", "workers", "jobs") for c in deployed[kind]]
    assert images == [{"registry_type": "DOCR", "repository": "todo", "digest": digest}] * 4
    calls = world.calls()
    assert "doctl apps update 6f1e-app --wait --spec -" in calls
    assert (
        world.git("log", "-1", "--format=%s")
        == f"Deploy todo {head[:12]} to stage (do) (App Platform)"
    )
    assert f"digest: {digest}" in world.overlay("do", "stage")
    assert not [c for c in calls if c.startswith("kubectl") and " kustomize " not in f" {c} "]
