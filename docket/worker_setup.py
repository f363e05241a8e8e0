"""How a Docket worker is put together: its workflows, activities, sandbox and checks.

`worker.py` is only the process (`main()`); the demo, the benchmarks and the tests build the
very same worker through `build_worker`.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import CodeType
from typing import Any, ClassVar

import structlog
import temporalio.bridge.proto.workflow_activation as activation_pb
import temporalio.bridge.proto.workflow_completion as completion_pb
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
    WorkflowSerializationContext,
)
from temporalio.worker import (
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import Info

from activities.audit import AuditActivities
from activities.checkpoint import CheckpointActivities
from activities.config import DEFAULT_TRUST_MAX_AGE, DeploymentActivities
from activities.platform import PlatformActivities, PlatformEndpoint
from audit.writer import AuditWriter
from docket.credentials import TrustRoots
from docket.reference import ReferenceData
from docket.temporal_names import CHECKPOINT_TASK_QUEUE, SEARCH_ATTRIBUTES, TASK_QUEUE, cli_type
from workflows import AuditCheckpoint, AuthorityRequest

log = structlog.get_logger("docket.worker")

# Pure, deterministic modules shared by all workflow runs instead of re-imported per run
# (the sandbox re-imports everything else): our core and its libraries.
PASSTHROUGH = (
    "docket",
    "audit",
    "transitions",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "cryptography",  # signatures and credentials are checked in workflow code (pure)
)
# What the sandbox does import afresh for each run: the workflow definitions.
WORKFLOW_PACKAGES = ("workflows",)


class CompileOnceLoader(importlib.machinery.SourceFileLoader):
    """Compiles a module's source once per process, then reuses the code object."""

    _compiled: ClassVar[dict[tuple[str, bytes], CodeType]] = {}

    def source_to_code(  # type: ignore[override]
        self, data: bytes, path: str, *args: Any, **kwargs: Any
    ) -> CodeType:
        # *args/**kwargs: whatever else this Python passes (`_optimize`; `fullname` from 3.15)
        key = (str(path), bytes(data))  # the source itself: an edited file compiles again
        code = self._compiled.get(key)
        if code is None:
            code = super().source_to_code(data, path, *args, **kwargs)
            self._compiled[key] = code
        return code


class CompileOnceFinder(importlib.abc.MetaPathFinder):
    """Finds the workflow modules as usual, to be loaded by `CompileOnceLoader`.

    The sandbox imports the workflow module afresh for every run it starts (a new request,
    or one evicted from the cache and replayed when it wakes). Where Python keeps no bytecode
    (PYTHONDONTWRITEBYTECODE, as in many container images, or a read-only tree) each of those
    imports would compile the source again: ~5 ms of a lifecycle's worker CPU here."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = frozenset(packages)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = CompileOnceLoader(spec.loader.name, spec.loader.path)
        return spec


def sandbox_restrictions() -> SandboxRestrictions:
    """The SDK's default restrictions with Docket's pure modules passed through."""
    return SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)


class _ContextFreeInstance(WorkflowInstance):
    """A sandboxed workflow instance that answers the SDK's payload-context questions itself.

    For every payload of every activation and completion (several passes each), the SDK asks
    the instance which serialization context and external-store context apply, so that a
    payload codec or external storage can act per command. A sandboxed instance answers by
    running code inside the sandbox (an `exec` that swaps the import machinery in and out):
    ~0.1 ms each, ~330 times per Docket lifecycle, whatever the workflow does. With neither a
    codec nor external storage configured, the SDK uses the answer for nothing, so this
    instance gives the workflow-wide context at once. Everything else is the sandbox's."""

    def __init__(self, inner: WorkflowInstance, info: Info) -> None:
        self._inner = inner
        self._context = WorkflowSerializationContext(
            namespace=info.namespace, workflow_id=info.workflow_id
        )
        self._store = StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id,
                run_id=info.run_id,
                type=info.workflow_type,
                namespace=info.namespace,
            )
        )

    def activate(
        self, act: activation_pb.WorkflowActivation
    ) -> completion_pb.WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return self._context

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return self._store

    def get_info(self) -> Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


class ContextFreeSandboxedRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox, with instances that skip the per-payload context round trip into the
    sandbox (`_ContextFreeInstance`). Only for a data converter without a payload codec and
    without external storage: `workflow_runner` checks."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(super().create_instance(det), det.info)


def uses_payload_context(data_converter: DataConverter) -> bool:
    """Whether anything in `data_converter` acts on a payload's serialization or store
    context (a payload codec or external storage does; the payload converters Docket uses
    do not, and the SDK does not pass them the per-command context anyway)."""
    return data_converter.payload_codec is not None or data_converter.external_storage is not None


def workflow_runner(
    *,
    sandboxed: bool = True,
    workflow_packages: Sequence[str] = WORKFLOW_PACKAGES,
    data_converter: DataConverter = pydantic_data_converter,
) -> WorkflowRunner:
    """How the worker runs workflow code: in the SDK's sandbox (the default; Docket's core
    modules pass through), with each module of `workflow_packages` compiled once per
    process; or not sandboxed (`DOCKET_WORKFLOW_SANDBOX=off`). `data_converter`: the
    client's; without a codec or external storage, the sandboxed instances answer the SDK's
    payload-context questions without entering the sandbox (`ContextFreeSandboxedRunner`)."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    finder = CompileOnceFinder(workflow_packages)
    if not any(
        isinstance(f, CompileOnceFinder) and f.packages == finder.packages for f in sys.meta_path
    ):
        sys.meta_path.insert(0, finder)
    if uses_payload_context(data_converter):
        return SandboxedWorkflowRunner(restrictions=sandbox_restrictions())
    return ContextFreeSandboxedRunner(restrictions=sandbox_restrictions())


# Optional modules that libraries on the activity path look for on every call. httpcore asks
# `import sniffio` several times per HTTP request (to tell trio from asyncio); when it is not
# installed, each ask searches sys.path again (~30 us, ~130 asks per lifecycle, more under the
# sandbox's import hook). Python's import system answers a name whose sys.modules entry is
# None with ModuleNotFoundError at once, so a missing module is looked for once per process.
OPTIONAL_MODULES = ("sniffio",)


def remember_missing_modules(names: Sequence[str] = OPTIONAL_MODULES) -> list[str]:
    """Record each of `names` that is not installed as absent (sys.modules[name] = None), so
    that imports of it fail at once instead of searching sys.path each time; an installed
    module is left alone. Returns the names recorded as absent."""
    missing = []
    for name in names:
        if name in sys.modules:
            continue
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]
            missing.append(name)
    return missing


class WorkerSetupError(Exception):
    """The worker cannot start; the message says what to do."""


async def check_search_attributes(client: Client) -> None:
    """Refuse to start when a search attribute is not registered (with the command to fix)."""
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    registered = dict(response.custom_attributes)
    missing = [key for key in SEARCH_ATTRIBUTES if key.name not in registered]
    wrong = [
        key
        for key in SEARCH_ATTRIBUTES
        if key.name in registered and int(registered[key.name]) != int(key.indexed_value_type)
    ]
    if missing or wrong:
        fixes = "\n".join(
            f"  temporal operator search-attribute create --namespace {client.namespace} "
            f"--name {key.name} --type {cli_type(key)}"
            for key in missing
        )
        problems = [f"missing: {', '.join(k.name for k in missing)}"] if missing else []
        problems += [f"wrong type: {k.name} (want {cli_type(k)})" for k in wrong]
        raise WorkerSetupError(
            f"search attributes not registered on namespace {client.namespace!r} "
            f"({'; '.join(problems)}). Register them, then start the worker again:\n{fixes}"
        )


def build_checkpoint_worker(
    client: Client,
    checkpoints: CheckpointActivities,
    *,
    task_queue: str = CHECKPOINT_TASK_QUEUE,
) -> Worker:
    """The checkpointer: the `AuditCheckpoint` workflow and its activity, on their own task
    queue, run by the one worker that holds the log key and reads every audit source (a
    worker without them never picks up a checkpoint)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AuditCheckpoint],
        activities=checkpoints.activities(),
        workflow_runner=workflow_runner(data_converter=client.data_converter),
    )


def platform_endpoints(
    reference: ReferenceData, environ: Mapping[str, str] | None = None
) -> dict[str, PlatformEndpoint]:
    """Endpoints from the reference data; secrets from the environment, never from history.

    A platform whose secret is missing is still served for probes (they need none); its API
    calls fail with MissingCredentials, so deliveries land in `delivery_failed` with the name
    of the variable to set, and `retry` works once the worker has it."""
    environ = os.environ if environ is None else environ
    endpoints = {}
    for platform in reference.platforms.values():
        secret = environ.get(platform.credential_env, "")
        if platform.api and not secret:
            log.warning(
                "platform without credentials: its deliveries will fail until it is set",
                platform=platform.id,
                set_variable=platform.credential_env,
            )
        base_url = environ.get(f"DOCKET_PLATFORM_URL_{platform.id.upper()}", platform.base_url)
        endpoints[platform.id] = PlatformEndpoint(
            base_url=base_url,
            secret=secret.encode(),
            markers=platform.markers,
            api=platform.api,
            credential_env=platform.credential_env,
            require_signed_responses=platform.require_signed_responses,
        )
    return endpoints


def build_worker(
    client: Client,
    *,
    platforms: PlatformActivities,
    writer: AuditWriter,
    reference: Callable[[], ReferenceData],
    trust: Callable[[], TrustRoots],
    trust_max_age: timedelta = DEFAULT_TRUST_MAX_AGE,
    task_queue: str = TASK_QUEUE,
    max_concurrent_activities: int = 200,
    max_cached_workflows: int = 1000,
    sandboxed: bool = True,
    audit: AuditActivities | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker with Docket's workflows and activities.

    `reference` and `trust` read the operator's reference data and trust roots (requests and
    signed commands are checked against them); a running request reads the trust roots again
    when they are older than `trust_max_age`.
    `max_cached_workflows` bounds memory (about 0.5 MiB per cached run; requests beyond it are
    replayed from history when they wake). `sandboxed=False` saves ~25% worker CPU
    (docs/performance.md); determinism is then guarded by the replay tests alone. `audit`
    replaces the audit activities (tests inject faults through it); `interceptors` go to the
    SDK's worker (tracing, or a test's hooks)."""
    remember_missing_modules()
    audit = audit or AuditActivities(writer)
    deployment = DeploymentActivities(reference, trust, trust_max_age=trust_max_age, client=client)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AuthorityRequest],
        activities=[*audit.activities(), *platforms.activities(), *deployment.activities()],
        max_concurrent_activities=max_concurrent_activities,
        max_cached_workflows=max_cached_workflows,
        workflow_runner=workflow_runner(sandboxed=sandboxed, data_converter=client.data_converter),
        interceptors=interceptors,
    )
