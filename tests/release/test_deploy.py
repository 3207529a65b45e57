"""`invoke deploy` in a clone with a bare remote and fake cloud tools (see conftest.py).

Stage builds HEAD once, pushes it, pins its digest in the stage overlay in a commit of
its own, pushes that, and waits for Argo CD; prod promotes exactly the image stage runs,
without a build. Guards refuse before anything changes, each with its fix; a dry run
prints the same plan and changes nothing.
"""

from __future__ import annotations

import re
import sys

import pytest

from ops.release import STAGE_STEPS

from .conftest import AWS_REPOSITORY, DO_REPOSITORY, ECR_PASSWORD, World, command, commands

STAGE_OVERLAY = "kustomize/overlays/do/stage/kustomization.yaml"
PROD_OVERLAY = "kustomize/overlays/do/prod/kustomization.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result, code: int = 1) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    return result.stderr


def pinned(overlay: str) -> tuple[str, str, str]:
    """newName, newTag and digest of the overlay's todo entry."""
    entry = re.search(
        r"- name: todo\n\s+newName: (\S+)\n\s+newTag: (\S+)\n\s+digest: (\S+)\n", overlay
    )
    assert entry, overlay
    return entry[1], entry[2], entry[3]


def changed_lines(world: World, commit: str = "HEAD") -> list[str]:
    """The +/- lines of a commit, and the files it touched."""
    diff = world.git("show", "--format=", "--unified=0", commit).splitlines()
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def deploy_stage(world: World, *options: str) -> str:
    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests", *options))
    world.fakes.calls()
    return output


def test_stage_builds_head_once_pins_its_digest_and_waits_for_argo_cd(world):
    head = world.git("rev-parse", "HEAD")
    main_before = world.remote_git("rev-parse", "main")

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests", "--wait"))

    calls = commands(world)
    build = [c for c in calls if c.startswith("docker buildx build")]
    assert build == [
        f"docker buildx build --target=runtime --platform=linux/amd64 --tag={DO_REPOSITORY}:<sha> "
        "--build-arg=VERSION=0.1.0+g" + head[:12] + " --build-arg=REVISION=<sha> "
        "--build-arg=SOURCE= --metadata-file=<scratch> --push <work>"
    ]
    assert [c for c in calls if c not in build] == [
        "kustomize build <work>/kustomize/argocd/do/stage",
        "docker version --format {{.Server.Version}}",
        "docker buildx version",
        "doctl account get --format Email --no-header",
        "doctl registry login --expiry-seconds 1800",
        f"docker buildx imagetools inspect {DO_REPOSITORY}:<sha> --format {{{{json .Manifest}}}}",
        "kustomize build <scratch>",
        "doctl kubernetes cluster kubeconfig save todo-stage --expiry-seconds 3600",
        "kubectl --namespace argocd annotate application todo-do-stage "
        "argocd.argoproj.io/refresh=normal --overwrite",
        "kubectl --namespace argocd get application todo-do-stage --output json",
    ]
    digest = world.fakes.state["registry"]["images"][f"{DO_REPOSITORY}:{head}"]

    # One commit, one file, the image entry's tag and digest only.
    assert world.git("log", "--format=%P", "-1") == head
    assert world.git("show", "--name-only", "--format=", "HEAD") == STAGE_OVERLAY
    assert changed_lines(world) == [
        "-    newTag: 0.1.0",
        f"+    newTag: {head}",
        f"+    digest: {digest}",
    ]
    message = world.git("log", "-1", "--format=%B")
    assert message.startswith(f"Deploy todo {head[:12]} to stage (do)\n")
    for trailer in ("Environment: do/stage", f"Image-Tag: {head}", f"Image-Digest: {digest}"):
        assert trailer in message.splitlines()

    # Pushed to the branch stage's Argo CD follows, and nowhere else.
    assert world.remote_git("rev-parse", "develop") == world.git("rev-parse", "HEAD")
    assert world.remote_git("rev-parse", "main") == main_before
    steps = re.findall(r"^\[(\d)/6\] (.+)$", output, re.MULTILINE)
    assert tuple(name for _, name in steps) == STAGE_STEPS
    assert f"todo-do-stage is Synced and Healthy with todo {head[:12]}" in output


def test_the_same_code_is_not_deployed_twice(world):
    deploy_stage(world)
    world.commit_change("docs/contract.md")  # not an image input

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "nothing to deploy: stage (do) runs todo" in output
    assert not [c for c in commands(world) if "registry login" in c or "buildx build" in c]
    assert world.git("log", "-1", "--format=%s") == "Change docs/contract.md"


def test_an_image_already_pushed_for_the_commit_is_reused_not_rebuilt(world):
    head = world.git("rev-parse", "HEAD")
    pushed = "sha256:" + "ab" * 32
    world.fakes.update(registry={"logged_in": [], "images": {f"{DO_REPOSITORY}:{head}": pushed}})

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "in the registry already (built once per commit)" in output
    assert not [c for c in commands(world) if c.startswith("docker buildx build")]
    assert pinned(world.overlay("do", "stage")) == (DO_REPOSITORY, head, pushed)


def test_prod_promotes_the_exact_image_stage_runs_without_a_build(world):
    deploy_stage(world)
    stage_image = pinned(world.overlay("do", "stage"))
    world.merge_develop_into_main()

    output = ok(world.invoke("deploy", "--env=prod", "--yes", "--wait"))

    calls = commands(world)
    assert not [c for c in calls if "buildx build" in c or c.startswith("docker version")]
    assert f"docker buildx imagetools inspect {DO_REPOSITORY}:<sha> --format " in " ".join(calls)
    assert "kubectl --namespace argocd get application todo-do-prod --output json" in calls
    assert pinned(world.overlay("do", "prod")) == stage_image
    assert world.git("show", "--name-only", "--format=", "HEAD") == PROD_OVERLAY
    message = world.git("log", "-1", "--format=%B")
    assert message.startswith(f"Promote todo {stage_image[1][:12]} to prod (do)\n")
    assert "Promoted-from: do/stage" in message.splitlines()
    assert world.remote_git("rev-parse", "main") == world.git("rev-parse", "HEAD")
    assert "HEAD holds the code todo" in output and "no rebuild" in output


def test_prod_refuses_code_that_stage_does_not_run(world):
    deploy_stage(world)
    world.merge_develop_into_main()
    world.commit_change("app/config/urls.py", branch="main")
    main_before = world.remote_git("rev-parse", "main")

    error = refused(world.invoke("deploy", "--env=prod", "--yes"))

    assert "stage (do) does not run this commit" in error
    assert "differs in app/config/urls.py" in error
    assert "Fix: deploy this code to stage first (merge it into develop)" in error
    assert world.remote_git("rev-parse", "main") == main_before
    assert not [c for c in commands(world) if "login" in c]


def test_prod_refuses_when_stage_has_no_deployed_image(world):
    world.git("switch", "--quiet", "main")

    error = refused(world.invoke("deploy", "--env=prod", "--yes"))

    assert "origin/develop records no deployed image for stage (do)" in error
    assert "Fix: invoke deploy --env stage --cloud do" in error


def test_prod_asks_before_it_changes_anything(world):
    deploy_stage(world)
    world.merge_develop_into_main()
    before = world.snapshot()

    error = refused(world.invoke("deploy", "--env=prod"))  # stdin is not a terminal

    assert "error: no terminal to confirm on. Fix: run again with --yes" in error
    assert world.snapshot() | {"registry": None} == before | {"registry": None}


def test_dry_runs_print_the_plan_and_change_nothing(world):
    before = world.snapshot()
    stage = ok(world.invoke("deploy", "--env=stage", "--dry-run"))
    assert world.snapshot() == before
    for planned in (
        "deploy stage (do): HEAD of develop  (dry run: nothing will change)",
        "would run: uv run invoke test",
        "would run: doctl registry login --expiry-seconds 1800",
        "would run: docker buildx build --target=runtime --platform=linux/amd64",
        f"+    newTag: {world.git('rev-parse', 'HEAD')}",
        "would run: git commit -m 'Deploy todo",
        "would run: git push origin HEAD:refs/heads/develop",
        "Would deploy",
    ):
        assert planned in stage
    only_reads = {"kustomize build", "docker version", "docker buildx", "doctl account"}
    assert {" ".join(c.split()[:2]) for c in commands(world)} == only_reads

    deploy_stage(world)
    world.merge_develop_into_main()
    before = world.snapshot()
    prod = ok(world.invoke("deploy", "--env=prod", "--dry-run", "--wait"))
    assert world.snapshot() == before
    stage_tag = pinned(world.overlay("do", "stage", "origin/develop"))[1]
    for planned in (
        "deploy prod (do): promote the image stage runs  (dry run: nothing will change)",
        f"ok  stage (do) runs {DO_REPOSITORY}:{stage_tag}@sha256:",
        f"would run: docker buildx imagetools inspect {DO_REPOSITORY}:{stage_tag}",
        f"+    newTag: {stage_tag}",
        "would run: git push origin HEAD:refs/heads/main",
        "would run: wait up to 600 s for todo-do-prod to run todo",
    ):
        assert planned in prod
    assert "buildx build" not in prod


def test_a_dirty_tree_is_refused_before_anything_runs(world):
    (world.work / "app" / "config" / "urls.py").write_text("# edited\n")
    (world.work / "app" / "new_module.py").write_text("# untracked\n")

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "uncommitted changes (app/config/urls.py, app/new_module.py)" in error
    assert "Fix: commit or stash them" in error
    assert commands(world) == ["kustomize build <work>/kustomize/argocd/do/stage"]


def test_every_missing_tool_is_named_with_its_fix(world):
    for tool in ("docker", "doctl", "kubectl"):
        world.fakes.remove(tool)

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests", "--wait"), code=127)

    assert error.splitlines() == [
        "error: `docker` is not installed. Fix: install Docker "
        "(https://docs.docker.com/get-started/get-docker/)",
        "error: `doctl` is not installed. Fix: install doctl "
        "(https://docs.digitalocean.com/reference/doctl/how-to/install/)",
        "error: `kubectl` is not installed. Fix: install kubectl "
        "(https://kubernetes.io/docs/tasks/tools/); --wait reads the Argo CD Application with it",
    ]
    assert commands(world) == ["kustomize build <work>/kustomize/argocd/do/stage"]


def test_missing_cloud_credentials_are_refused_with_the_fix(world):
    world.fakes.update(do={"token": False, "email": ""})

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "error: doctl has no working credentials (Error: Unable to initialize" in error
    assert "Fix: export DIGITALOCEAN_ACCESS_TOKEN" in error
    assert not [c for c in commands(world) if "login" in c or "buildx build" in c]


def test_the_branch_and_its_remote_must_match_the_environment(world):
    world.git("switch", "--quiet", "main")
    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests"))
    assert "stage (do) deploys from develop, the branch its Argo CD Application follows" in error
    assert "Fix: git switch develop" in error

    world.git("switch", "--quiet", "develop")
    world.git("commit", "--quiet", "--allow-empty", "-m", "Not pushed yet")
    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests"))
    assert "develop is 1 commit(s) ahead of origin/develop and 0 behind" in error


def test_failing_tests_stop_the_deploy_and_passing_ones_let_it_go_on(world):
    failing = f"{sys.executable} -c 'raise SystemExit(1)'"
    error = refused(world.invoke("deploy", "--env=stage", test_command=failing))
    assert "error: the tests failed; nothing was deployed" in error
    assert not [c for c in commands(world) if "login" in c or "buildx build" in c]

    passing = f"{sys.executable} -c 'print(\"412 passed\")'"
    output = ok(world.invoke("deploy", "--env=stage", test_command=passing))
    assert "412 passed" in output
    assert [c for c in commands(world) if c.startswith("docker buildx build")]


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("stuck", "todo-do-stage did not run todo {tag} Synced and Healthy within 1 s"),
        ("fail", "Argo CD failed to sync todo {tag} to stage (do): one or more synchronization"),
    ],
)
def test_waiting_ends_in_a_clear_failure_with_the_way_back(world, behaviour, expected):
    head = world.git("rev-parse", "HEAD")
    clusters = world.fakes.state["clusters"]
    clusters["todo-stage"]["todo-do-stage"]["behaviour"] = behaviour
    world.fakes.update(clusters=clusters)

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests", "--wait", "--timeout=1"))

    assert expected.format(tag=head[:12]) in error
    assert "`invoke rollback --env stage --cloud do` restores the previous image" in error
    assert world.remote_git("rev-parse", "develop") == world.git("rev-parse", "HEAD")


def test_aws_reads_the_repository_from_terraform_and_logs_in_to_ecr(world):
    (world.work / "terraform" / "aws" / "backend.hcl").write_text('bucket = "todo-state"\n')
    world.git("add", "terraform/aws/backend.hcl")
    world.git("commit", "--quiet", "-m", "State bucket")
    world.git("push", "--quiet", "origin", "develop")
    head = world.git("rev-parse", "HEAD")

    output = ok(world.invoke("deploy", "--env=stage", "--cloud=aws", "--skip-tests", "--wait"))

    calls = world.fakes.calls()
    lines = [command(world, c) for c in calls if c["args"][:2] != ["buildx", "build"]]
    assert lines[:9] == [
        "kustomize build <work>/kustomize/argocd/aws/stage",
        "docker version --format {{.Server.Version}}",
        "docker buildx version",
        "aws sts get-caller-identity --output json",
        "terraform -chdir=<work>/terraform/aws/stacks/shared init -input=false -reconfigure "
        "-backend-config=<work>/terraform/aws/backend.hcl -backend-config=key=aws/shared.tfstate",
        "terraform -chdir=<work>/terraform/aws/stacks/shared output -raw image_repository",
        "aws ecr get-login-password --region eu-central-1",
        f"docker login --username AWS --password-stdin {AWS_REPOSITORY.split('/')[0]}",
        f"docker buildx imagetools inspect {AWS_REPOSITORY}:<sha> --format {{{{json .Manifest}}}}",
    ]
    login = next(c for c in calls if c["args"][:1] == ["login"])
    assert login["stdin"].strip() == ECR_PASSWORD  # on stdin, never on the command line
    assert "aws eks update-kubeconfig --name todo-stage --region eu-central-1 --kubeconfig" in (
        " ".join(lines)
    )
    assert pinned(world.overlay("aws", "stage"))[:2] == (AWS_REPOSITORY, head)
    assert {
        "-    newName: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/todo",
        f"+    newName: {AWS_REPOSITORY}",
    } < set(changed_lines(world))
    assert "image repository 210987654321.dkr.ecr" in output and "(terraform output)" in output


def test_a_push_that_lost_the_race_is_rebased_onto_the_remote(world, tmp_path):
    teammate = tmp_path / "teammate"
    world.git("clone", "--quiet", "--branch", "develop", str(world.remote), str(teammate))
    world.fakes.update(teammate_pushes_during_build={"clone": str(teammate), "branch": "develop"})

    output = ok(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "origin/develop moved on; rebasing the release commit onto it" in output
    subjects = world.remote_git("log", "--format=%s", "-2", "develop").splitlines()
    assert subjects[0].startswith("Deploy todo") and subjects[1] == "A teammate's commit"


def test_a_remote_argo_cd_does_not_pull_is_refused(world):
    source = world.work / "kustomize" / "argocd" / "base" / "source.yaml"
    source.write_text(
        re.sub(r"repoURL: .*", "repoURL: https://github.com/acme/todo.git", source.read_text())
    )
    world.git("commit", "--quiet", "-am", "Point Argo CD elsewhere")
    world.git("push", "--quiet", "origin", "develop")

    error = refused(world.invoke("deploy", "--env=stage", "--skip-tests"))

    assert "error: Argo CD (todo-do-stage) pulls https://github.com/acme/todo.git" in error
    assert "Fix: set repoURL in kustomize/argocd/base/source.yaml" in error


def test_image_push_tags_the_commit_and_pushes_once(world):
    world.fakes.update(registry={"logged_in": ["registry.digitalocean.com"], "images": {}})
    head = world.git("rev-parse", "HEAD")

    first = ok(world.invoke("image.push", f"--repository={DO_REPOSITORY}"))
    second = ok(world.invoke("image.push", f"--repository={DO_REPOSITORY}"))

    digest = world.fakes.state["registry"]["images"][f"{DO_REPOSITORY}:{head}"]
    assert first.splitlines()[-1] == f"Pushed {DO_REPOSITORY}:{head}@{digest}"
    assert second.splitlines()[-1] == (
        f"Already in the registry (built once per commit): {DO_REPOSITORY}:{head}@{digest}"
    )
    builds = [c for c in commands(world) if c.startswith("docker buildx build")]
    assert len(builds) == 1 and "--platform=linux/amd64" in builds[0]

    (world.work / "app" / "config" / "urls.py").write_text("# edited\n")
    error = refused(world.invoke("image.push", f"--repository={DO_REPOSITORY}"))
    assert "error: uncommitted changes (app/config/urls.py) would be in an image" in error
