"""The container image: `invoke image.lint`, `image.build`, `image.push` and `image.smoke`.

hadolint and checkov read the Dockerfile; build is `docker build`, push `docker buildx build
--push` (once per commit, signed with cosign when invoke.yaml sets image.sign); smoke runs
tests/image/test_smoke.py. `invoke deploy` (ops/release.py) uses publish() and verify().
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from ops.tools import CHECKOV, REPO_ROOT, git, require, uv

IMAGE_NAME = "todo"  # docs/contract.md: the base's image name, what Tilt builds
DOCKERFILE = REPO_ROOT / "Dockerfile"
# What the Dockerfile reads from the build context besides app/ (.dockerignore allows no more).
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock")
DOCKER_FIX = "install Docker (https://docs.docker.com/get-started/get-docker/)"
COSIGN_FIX = "install cosign (https://docs.sigstore.dev/cosign/system_config/installation/)"
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
GITHUB_OIDC = "https://token.actions.githubusercontent.com"  # the issuer of CD's identity
BUILDKIT_METADATA = "https://mobyproject.org/buildkit@v1#metadata"  # its vcs.source: the repo


@task
def lint(c):
    """Check the Dockerfile with hadolint and checkov (each skip is commented where it applies)."""
    hadolint = c.run(f"hadolint --no-color {DOCKERFILE}", echo=True, warn=True)
    checkov = f"{uv()} tool run --quiet --from {CHECKOV} checkov --framework dockerfile --compact"
    env = {"BC_SKIP_MAPPING": "TRUE"}  # else checkov calls its vendor's API first
    checkov = c.run(f"{checkov} --quiet --skip-download --file {DOCKERFILE}", env=env, warn=True)
    if hadolint.failed or checkov.failed:
        raise Exit("error: the Dockerfile has findings (above)", code=1)


def https_url(remote: str) -> str:
    """A git remote as the https URL the OCI `source` label wants; "" for a local path."""
    url_or_scp = r"(?:(?:ssh|https?)://(?:[^@/]+@)?|[\w.-]+@)([^:/]+)(?::\d+)?[:/](.+?)(?:\.git)?/?"
    match = re.fullmatch(url_or_scp, remote.strip())
    return f"https://{match[1]}/{match[2]}" if match else ""


def build_args() -> dict[str, str]:
    """The Dockerfile's ARGs for its OCI labels: version (HEAD's release tag, else the project's
    version and the commit), revision and source of this checkout."""
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    commit = git("rev-parse", "HEAD", check=False)
    return {
        "VERSION": git("describe", "--tags", "--exact-match", check=False)
        or (f"{version}+g{commit[:12]}" if commit else version),
        "REVISION": commit,
        "SOURCE": https_url(git("remote", "get-url", "origin", check=False)),
    }


def build_flags(tag: str, target: str, platform: str) -> list[str]:
    platforms = [f"--platform={platform}"] if platform else []
    labels = [f"--build-arg={key}={value}" for key, value in build_args().items()]
    return [f"--target={target}", *platforms, f"--tag={tag}", *labels]


def build_command(tag: str, target="runtime", context=REPO_ROOT, platform="") -> list[str]:
    """`docker build` of a Dockerfile target, labelled with this commit (run with BuildKit)."""
    docker = require("docker", DOCKER_FIX)
    # An engine without the default bridge network gives RUN steps only the host's network.
    no_bridge = subprocess.run([docker, "network", "inspect", "bridge"], capture_output=True)  # noqa: S603
    network = ["--network=host"] * bool(no_bridge.returncode)
    flags = build_flags(tag, target, platform)
    return [docker, "build", "--progress=plain", *network, *flags, str(context)]


@task(
    help={
        "tag": f"image tag (default {IMAGE_NAME}:<short commit sha>)",
        "target": "Dockerfile target: runtime (production, default) or dev (Tilt)",
        "platform": "build for this platform, e.g. linux/arm64 (default: the engine's)",
    }
)
def build(c, tag="", target="runtime", platform=""):
    """Build the image (`docker build`), labelled with this commit: source, revision, version."""
    tag = tag or f"{IMAGE_NAME}:{git('rev-parse', '--short', 'HEAD', check=False) or 'dev'}"
    c.run(shlex.join(build_command(tag, target, platform=platform)), env={"DOCKER_BUILDKIT": "1"})


def uncommitted_changes() -> list[str]:
    """The paths `git status` lists: what would be in an image but not in its commit."""
    changed = git("status", "--porcelain", check=False).splitlines()
    return [line.split(maxsplit=1)[1] for line in changed]


def inspect_command(reference: str) -> list[str]:
    """Asks the registry itself (no engine needed) for the tag's manifest and digest."""
    manifest = ["--format", "{{json .Manifest}}"]
    return ["docker", "buildx", "imagetools", "inspect", reference, *manifest]


def remote_digest(c, reference: str) -> str | None:
    """The digest a registry holds for repository:tag, None when it has no such tag."""
    result = c.run(shlex.join(inspect_command(reference)), hide=True, warn=True, in_stream=False)
    if result.ok:
        return json.loads(result.stdout)["digest"]
    said = (result.stderr.strip().splitlines() or ["no answer"])[-1]
    # What registries answer for a tag they do not hold (Docker Hub, DOCR, ECR, distribution).
    if re.search("not found|manifest unknown|name unknown|does not exist", said, re.I):
        return None
    raise Exit(
        f"error: cannot read {reference} from its registry ({said}). Fix: log in to it (`invoke "
        "deploy` does: doctl registry login, or aws ecr get-login-password | docker login)",
        code=1,
    )


def push_command(reference, metadata_file, platforms, cache_from, cache_to) -> list[str]:
    """buildx builds the runtime target and pushes it, SBOM and SLSA provenance attached."""
    flags = [*build_flags(reference, "runtime", platforms), f"--metadata-file={metadata_file}"]
    flags += ["--sbom=true", "--provenance=mode=max"]
    flags += [f"--cache-{k}={v}" for k, v in (("from", cache_from), ("to", cache_to)) if v]
    return ["docker", "buildx", "build", *flags, "--push", str(REPO_ROOT)]


def print_command(args: list[str], **_) -> None:
    print(f"$ {shlex.join(args)}", flush=True)


def publish(c, repository, platforms, cache_from="", cache_to="", show=print_command):
    """Push REPOSITORY:<HEAD's SHA> unless the registry has it: (tag, digest, built now). A tag
    found is reused, which also keeps immutable-tag registries (ECR) from refusing a push."""
    signing = (c.config.get("image") or {}).get("sign") and require("cosign", COSIGN_FIX)
    if not COMMIT_SHA.fullmatch(tag := git("rev-parse", "HEAD", check=False)):
        raise Exit(f"error: {REPO_ROOT} has no commit to tag the image with", code=1)
    show(inspect_command(reference := f"{repository}:{tag}"))
    if digest := remote_digest(c, reference):
        return tag, digest, False
    with tempfile.TemporaryDirectory(prefix="todo-push-") as tmp:
        metadata_file = Path(tmp) / "metadata.json"
        show(command := push_command(reference, metadata_file, platforms, cache_from, cache_to))
        full = {"BUILDX_METADATA_PROVENANCE": "max"}  # the metadata file's: the attested one
        if c.run(shlex.join(command), warn=True, pty=False, in_stream=False, env=full).failed:
            raise Exit(f"error: building or pushing {reference} failed (see above)", code=1)
        metadata = json.loads(metadata_file.read_text())
        signed = f"{repository}@{(digest := metadata['containerimage.digest'])}"
        # buildx's provenance, one statement per platform, each attested with a signature.
        provenance = [v for k, v in metadata.items() if k.startswith("buildx.build.provenance")]
        commands = [["sign", "--yes", signed]] if signing else []
        attest = ["attest", "--yes", "--type", "slsaprovenance", "--predicate"]
        for index, predicate in enumerate(provenance if signing else []):
            (path := Path(tmp) / f"provenance-{index}.json").write_text(json.dumps(predicate))
            commands.append([*attest, str(path), signed])
        for command in commands:
            show(["cosign", *command])
            if c.run(shlex.join([signing, *command]), warn=True, in_stream=False).failed:
                raise Exit(
                    f"error: cosign could not sign {signed} (see above), so prod would refuse "
                    f"it. Fix: delete {reference} from the registry, then run again",
                    code=1,
                )
    return tag, digest, True


def signer(c, repo_url: str, branch: str) -> tuple[str, str]:
    """(repository, identity): the GitHub repository images are built from (image.source in
    invoke.yaml, else Argo CD's repoURL) and its Deploy workflow on `branch`, which signs them."""
    source = (c.config.get("image") or {}).get("source") or https_url(repo_url)
    return source, f"{source}/.github/workflows/deploy.yml@refs/heads/{branch}"


def verify(c, reference, repo_url, branch, dry_run=False, show=print_command) -> str:
    """Why `reference` (repository@digest) is not one CD built here, or "": cosign must find it
    signed by signer()'s identity, with SLSA provenance it attested naming the repository."""
    source, identity = signer(c, repo_url, branch)
    who = [f"--certificate-identity={identity}", f"--certificate-oidc-issuer={GITHUB_OIDC}"]
    fix = (
        f"Fix: deploy stage from the Deploy workflow on {branch}, which signs what it builds "
        "(or set image.source in invoke.yaml to the repository it runs in)"
    )
    for command in (["verify"], ["verify-attestation", "--type", "slsaprovenance"]):
        show(["cosign", *command, *who, reference], would=dry_run)
        if dry_run:
            continue
        cosign = [require("cosign", COSIGN_FIX), *command, *who, reference]
        result = subprocess.run(cosign, capture_output=True, text=True, check=False)  # noqa: S603
        lines = result.stderr.strip().splitlines() or [f"exit {result.returncode}"]
        said = next((line for line in lines if line.startswith("Error")), lines[-1])
        if "none of the expected identities" in said:
            return f"{reference} is signed, but not by {identity} (cosign: {said}). {fix}"
        if result.returncode:
            what = "is not signed" if command == ["verify"] else "has no SLSA provenance"
            return f"{reference} {what} by {identity} (cosign: {said}). {fix}"
    if dry_run:
        return ""
    envelopes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    statements = [json.loads(base64.b64decode(envelope["payload"])) for envelope in envelopes]
    metadata = [s["predicate"].get("metadata", {}).get(BUILDKIT_METADATA, {}) for s in statements]
    named = {m.get("vcs", {}).get("source", "no repository") for m in metadata} or {"nothing"}
    if foreign := sorted(name for name in named if https_url(name) != source):
        return f"the provenance of {reference} names {', '.join(foreign)}, not {source}. {fix}"
    return ""


@task(
    help={
        "repository": "where to push, e.g. registry.digitalocean.com/REGISTRY/todo",
        "platforms": "comma-separated platforms (default linux/amd64: the clusters' nodes)",
        "cache_from": "buildx --cache-from, e.g. type=gha",
        "cache_to": "buildx --cache-to, e.g. type=gha,mode=max",
    }
)
def push(c, repository, platforms="linux/amd64", cache_from="", cache_to=""):
    """Push REPOSITORY:<commit sha> once per commit and print its digest (log in first)."""
    if changes := uncommitted_changes():
        raise Exit(
            f"error: uncommitted changes ({', '.join(changes[:5])}) would be in an image tagged "
            "with a commit that lacks them. Fix: commit or stash them",
            code=1,
        )
    tag, digest, built = publish(c, repository, platforms, cache_from, cache_to)
    print("Pushed" if built else "Already in the registry (built once per commit):", end=" ")
    print(f"{repository}:{tag}@{digest}")


SMOKE_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
SMOKE_REDIS = "redis://127.0.0.1:6379/12"


@task(
    help={
        "image": "test this image instead of building one (skips the rebuild and dev checks)",
        "postgres": "PostgreSQL admin URL; the run creates and drops a database of its own in it",
        "redis": "Redis URL of an unused database index (emptied after the run)",
        "keep": "keep the (stopped) containers, the database and the Redis keys, for a look",
        "no_dev": "skip building and checking the dev target",
    }
)
def smoke(c, image="", postgres=SMOKE_POSTGRES, redis=SMOKE_REDIS, keep=False, no_dev=False):
    """Build the image and run every process as the cluster does: tests/image/test_smoke.py."""
    args = [sys.executable, "-m", "pytest", "tests/image/test_smoke.py", "-v", "--smoke"]
    args += ["--smoke-postgres", postgres, "--smoke-redis", redis]
    args += ["--smoke-image", image] * bool(image) + ["--smoke-keep"] * keep
    c.run(shlex.join(args + ["--smoke-no-dev"] * no_dev), pty=sys.stdout.isatty())


ns = Collection("image", lint, build, push, smoke)
