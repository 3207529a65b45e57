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

from ops.tools import REPO_ROOT, git, require, run, run_checkov, said

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
    [report] = run_checkov("dockerfile", "--file", str(DOCKERFILE))
    failed = [f"{f['check_id']}: {f['check_name']}" for f in report["results"]["failed_checks"]]
    print(f"checkov: {report['summary']['passed']} checks passed", *failed, sep="\n  ")
    if hadolint.failed or failed:
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


def uncommitted_changes() -> str:
    """What `git status` lists, as a refusal: images and releases are of commits only."""
    changed = git("status", "--porcelain", check=False).splitlines()
    if not changed:
        return ""
    paths = ", ".join(line.split(maxsplit=1)[1] for line in changed[:5])
    return f"uncommitted changes ({paths}); only commits ship. Fix: commit or stash them"


def remote_digest(c, reference: str, dry=False) -> str | None:
    """The digest a registry holds for repository:tag, asked of the registry itself (no engine
    needed); None when it has no such tag, or in a dry run."""
    inspect = ["docker", "buildx", "imagetools", "inspect", reference]
    result = run(c, [*inspect, "--format", "{{json .Manifest}}"], dry)
    if dry:
        return None
    if result.ok:
        return json.loads(result.stdout)["digest"]
    # What registries answer for a tag they do not hold (Docker Hub, DOCR, ECR, distribution).
    if re.search("not found|manifest unknown|name unknown|does not exist", said(result), re.I):
        return None
    raise Exit(
        f"error: cannot read {reference} from its registry ({said(result)}). Fix: log in to it"
        " (`invoke deploy` does: doctl registry login, or docker login with ECR's password)",
        code=1,
    )


def publish(c, repository, platforms, cache_from="", cache_to="", dry=False):
    """Push REPOSITORY:<HEAD's SHA> unless the registry has it: (tag, digest, built now). A tag
    found is reused, which also keeps immutable-tag registries (ECR) from refusing a push.
    buildx attaches an SBOM and SLSA provenance; with image.sign, cosign signs the digest and
    attests the provenance."""
    signing = (c.config.get("image") or {}).get("sign") and require("cosign", COSIGN_FIX)
    tag = git("rev-parse", "HEAD", check=False)
    if not COMMIT_SHA.fullmatch(tag):
        raise Exit(f"error: {REPO_ROOT} has no commit to tag the image with", code=1)
    reference = f"{repository}:{tag}"
    if digest := remote_digest(c, reference, dry):
        return tag, digest, False
    with tempfile.TemporaryDirectory(prefix="todo-push-") as tmp:
        metadata_file = Path(tmp) / "metadata.json"
        flags = [*build_flags(reference, "runtime", platforms), f"--metadata-file={metadata_file}"]
        flags += ["--sbom=true", "--provenance=mode=max"]
        flags += [f"--cache-{k}={v}" for k, v in (("from", cache_from), ("to", cache_to)) if v]
        push = ["docker", "buildx", "build", *flags, "--push", str(REPO_ROOT)]
        full = {"BUILDX_METADATA_PROVENANCE": "max"}  # the metadata file's: the attested one
        run(c, push, dry, f"building or pushing {reference} failed", hide=None, env=full)
        if dry:  # what buildx would write, as placeholders
            metadata = {"containerimage.digest": "<pushed-digest>", "buildx.build.provenance": {}}
        else:
            metadata = json.loads(metadata_file.read_text())
        digest = metadata["containerimage.digest"]
        signed = f"{repository}@{digest}"
        unsigned = f"cosign could not sign {signed}, so prod would refuse it (delete {reference}"
        unsigned += " from the registry, then run again)"
        if signing:
            run(c, ["cosign", "sign", "--yes", signed], dry, unsigned)
        # buildx's provenance, one statement per platform, each attested with a signature.
        provenance = [v for k, v in metadata.items() if k.startswith("buildx.build.provenance")]
        for index, predicate in enumerate(provenance if signing else []):
            path = Path(tmp) / f"provenance-{index}.json"
            path.write_text(json.dumps(predicate))
            attest = ["cosign", "attest", "--yes", "--type", "slsaprovenance", "--predicate"]
            run(c, [*attest, str(path), signed], dry, unsigned)
    return tag, digest, True


def signer(c, repo_url: str, branch: str) -> tuple[str, str]:
    """(repository, identity): the GitHub repository images are built from (image.source in
    invoke.yaml, else Argo CD's repoURL) and its Deploy workflow on `branch`, which signs them."""
    source = (c.config.get("image") or {}).get("source") or https_url(repo_url)
    return source, f"{source}/.github/workflows/deploy.yml@refs/heads/{branch}"


def verify(c, reference, repo_url, branch, dry=False) -> str:
    """Why `reference` (repository@digest) is not one CD built here, or "": cosign must find it
    signed by signer()'s identity, with SLSA provenance it attested naming the repository."""
    source, identity = signer(c, repo_url, branch)
    who = [f"--certificate-identity={identity}", f"--certificate-oidc-issuer={GITHUB_OIDC}"]
    fix = (
        f"Fix: deploy stage from the Deploy workflow on {branch}, which signs what it builds "
        "(or set image.source in invoke.yaml to the repository it runs in)"
    )
    for command in (["verify"], ["verify-attestation", "--type", "slsaprovenance"]):
        result = run(c, ["cosign", *command, *who, reference], dry)
        if "none of the expected identities" in said(result):
            return f"{reference} is signed, but not by {identity} (cosign: {said(result)}). {fix}"
        if result.failed:
            what = "is not signed" if command == ["verify"] else "has no SLSA provenance"
            return f"{reference} {what} by {identity} (cosign: {said(result)}). {fix}"
    if dry:
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
    if problem := uncommitted_changes():
        raise Exit(f"error: {problem}", code=1)
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
