"""The Docker Engine API through the Docker SDK (the ``docker`` package), for the compose lab.

The compose CLI brings a lab up and down; everything the harness does while a
lab runs goes to the engine's socket directly, without a CLI process each time:

* :func:`project_containers` – a project's containers by service, in one call;
* :func:`read_file` – a file of a container (a ready file, the org CA) without
  running anything in it; :func:`exec_output` – a short command's output;
* :func:`logs_tail` – the last lines a container logged, for error messages;
* long-lived programs in containers over one exec stream each: :mod:`harness.lab.execstream`.

:func:`exec_target` reads back the container and user of a ``docker exec``
prefix the compose lab wrote into ``lab.json`` (what a person types to rerun a
cell), so the harness runs the same thing over the API.  The SDK is imported on
first use: the local lab never pays for it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence

from harness.errors import EnvironmentProblem, LabError

_client = None
_client_lock = threading.Lock()


def api():
    """The process's Docker API client (``docker.APIClient``), made on first use."""
    global _client
    with _client_lock:
        if _client is None:
            try:
                import docker
            except ImportError:
                raise EnvironmentProblem("the compose lab needs the Python package 'docker' (Docker SDK); "
                                         "reinstall the lab (pip install -e .) or use --lab local.") from None
            try:
                # "auto": the engine's own API version (Docker 20.10 speaks 1.41, older than the SDK's default).
                # A pool large enough for every exec session plus the calls made beside them.
                _client = docker.from_env(version="auto", timeout=60, max_pool_size=64).api
            except docker.errors.DockerException as e:
                raise EnvironmentProblem(f"no Docker engine answers ({e}); start dockerd or use --lab local.") from None
        return _client


def _not_found(exc: Exception) -> bool:
    return getattr(getattr(exc, "response", None), "status_code", None) == 404


def project_containers(project: str) -> dict[str, dict]:
    """The compose ``project``'s containers (running or not) by service: the API's summaries
    (``Id``, ``State``, ``Labels`` ...); of a scaled service, its first container."""
    found: dict[str, dict] = {}
    summaries = api().containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
    for c in sorted(summaries, key=lambda c: int(c["Labels"].get("com.docker.compose.container-number", "1"))):
        found.setdefault(c["Labels"].get("com.docker.compose.service", ""), c)
    return found


def project_exists(project: str) -> bool:
    """Whether anything of ``project`` is left: a container, a network or a volume."""
    label = {"label": f"com.docker.compose.project={project}"}
    client = api()
    return bool(client.containers(all=True, filters=label) or client.networks(filters=label)
                or (client.volumes(filters=label) or {}).get("Volumes"))


def inspect(container: str) -> dict:
    """``docker inspect`` of one container."""
    return api().inspect_container(container)


def read_file(container: str, path: str) -> bytes | None:
    """The bytes of the regular file ``path`` in ``container`` (running or not), or None if it has none."""
    import tarfile

    import docker

    try:
        stream, _ = api().get_archive(container, path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None else None
        return handle.read() if handle is not None else None


def exec_output(container: str, argv: Sequence[str], *, user: str = "") -> str:
    """Run ``argv`` in ``container`` and return its standard output; a failure is a LabError."""
    client = api()
    exec_id = client.exec_create(container, list(argv), stdout=True, stderr=True, user=user)["Id"]
    out, err = client.exec_start(exec_id, demux=True)
    code = client.exec_inspect(exec_id).get("ExitCode")
    if code != 0:
        why = (err or out or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"'{' '.join(argv)}' in container {container[:12]} failed (exit {code}): {why[0]}.")
    return (out or b"").decode(errors="replace")


def logs_tail(container: str, lines: int = 5) -> list[str]:
    """The last ``lines`` lines ``container`` logged (standard output and error)."""
    try:
        text = api().logs(container, stdout=True, stderr=True, tail=lines).decode(errors="replace")
    except Exception as e:  # a message about a failure must not fail itself
        return [f"(no logs: {e})"]
    return [line for line in text.splitlines() if line.strip()]


def exec_target(prefix: Sequence[str]) -> tuple[str, str] | None:
    """``(container, user)`` of a prefix ``docker exec [-i] [-u USER] CONTAINER``, or None for any
    other prefix (``ip netns exec ...``, or docker options the harness does not write)."""
    args = list(prefix)
    if args[:2] != ["docker", "exec"]:
        return None
    args, user = args[2:], ""
    while len(args) > 1:
        if args[0] in ("-i", "--interactive"):
            args = args[1:]
        elif args[0] in ("-u", "--user"):
            user, args = args[1], args[2:]
        else:
            return None
    return (args[0], user) if len(args) == 1 and not args[0].startswith("-") else None
