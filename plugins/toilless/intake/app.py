"""The FastAPI app the Toilless plugin mounts in Airflow's API server at ``/toilless``.

``POST /toilless/alertmanager``: an Alertmanager webhook (version 4). Answers:

* 200 ``accepted``: the delivery passed every check below and is in the durable inbox (one insert); the worker
  decides each alert moments later (started, duplicate, skipped, queued, notify_only, no_runbook, resolved,
  ignored, paused, missing, rejected), posts the acks, and ``GET /toilless/deliveries/{delivery}`` tells what
  became of each alert. Alertmanager only needs a 2xx to stop retrying;
* 401: no or wrong credentials (bearer token or basic auth; the secret is the Connection's password);
* 413: body larger than ``max_payload_bytes``; 400: not JSON, or JSON no sender means (nesting deeper than 32,
  integers of more than 30 digits, NaN, lone surrogates, NUL); 422: not an Alertmanager v4 payload (timestamps
  included), a value over the configured ``limits``, or an alert's conf fails its route or the DAG's Params;
  nothing is started by any 4xx;
* 503: the intake cannot accept now (no credentials configured, the inbox insert failed):
  Alertmanager retries, and a retry is safe because every decision is idempotent.

The process-wide app (:func:`get_app`, the one the plugin mounts) freezes the API server's start-up heap for the
garbage collector (:func:`freeze_startup_heap`): a full collection of Airflow's API server scanned about 620,000
objects, 0.3 s of CPU with every thread stopped, and every answer in flight during a storm waited for it.

Airflow does not authenticate plugin apps: this app does it itself, before it reads the body. For the same reason
there is no public docs page: ``GET /toilless/openapi.json`` answers authenticated callers only, and no Swagger UI
page is served (it loads its scripts from a public CDN, which a closed network cannot reach).

Each accepted delivery's stages and the event loop's lag are timed and summarised in the API server's log every 30 s
while deliveries arrive (:mod:`toilless.intake.timings`).

The worker that decides the inbox, posts the Slack outbox and starts queued alerts is its own process
(``python -m toilless.intake.worker``, see :mod:`toilless.intake.worker`), started with Airflow's components; this app
only validates and inserts, so the API server's GIL serves answers, the UI and the Execution API, not decisions. With
``worker: api_server`` in alert_intake.yaml (a deployment that cannot run one more process) the worker runs here as
a daemon thread, started with the app: Airflow's API server runs the lifespan of every mounted FastAPI app, so
accepted deliveries, unsent acknowledgements and queued alerts left by a restart are handled at once, not on the
next delivery.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from toilless.incidents.api import incidents_router
from toilless.intake.auth import authorized
from toilless.intake.models import WebhookPayload, validation_errors
from toilless.intake.service import IntakeError, IntakeService, Rejected, Unavailable
from toilless.intake.timings import WebhookTimings, watch_loop_lag
from toilless.intake.validation import BadBody, parse_body
from toilless.intake.worker import IntakeWorker, build_worker, resolve_mode
from toilless.slack_actions.router import router as slack_actions_router

log = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="toilless", Basic realm="toilless"'}


def create_app(
    service: IntakeService | None = None, worker: IntakeWorker | None = None, *, freeze_heap: bool = False
) -> FastAPI:
    """Build the intake app. Tests pass their own service (settings, clock) and worker, which then runs in here.

    Without a worker, one runs in this process only with ``worker: api_server`` (read at start-up); by default the
    worker process decides (``python -m toilless.intake.worker``). ``freeze_heap``: at start-up, take the
    process's objects out of the garbage collector's full collections (:func:`freeze_startup_heap`); the API
    server's app does, a test's app does not (it would freeze the test process).
    """
    service = service or IntakeService()
    embedded: list[IntakeWorker] = [worker] if worker is not None else []

    def start_embedded() -> None:
        if not embedded:
            mode = worker_mode(service)
            if mode != "api_server":
                log.info("Alert intake: decisions by the worker process (worker: %s), not in the API server", mode)
                return
            embedded.append(build_worker(service))
            log.info("Alert intake: the worker runs in the API server (worker: api_server, or auto on SQLite)")
        service.wakeup = embedded[0].wake
        embedded[0].ensure_started()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if freeze_heap:
            freeze_startup_heap()
        await run_in_threadpool(start_embedded)
        watcher = asyncio.create_task(watch_loop_lag(timings))
        try:
            yield
        finally:
            watcher.cancel()
            if embedded:
                await run_in_threadpool(embedded[0].stop)
            for pool in threads:
                pool.shutdown(wait=False)
            threads.clear()
            semaphore.clear()  # bound to this event loop; a restarted app makes new ones

    app = FastAPI(
        title="Toilless alert intake",
        description="Alertmanager webhooks start the routed runbook DAG once per firing alert and target.",
        lifespan=lifespan,
        # No public description and no CDN-loaded docs page; the schema is served below, behind the intake's auth.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    timings = WebhookTimings()
    app.state.timings = timings
    app.include_router(incidents_router(service.provider))  # /incidents: acknowledge, timeline (issue 18)
    app.state.workers = embedded
    app.include_router(slack_actions_router)  # POST /toilless/slack/actions (toilless.slack_actions)
    semaphore: list[asyncio.Semaphore] = []
    threads: list[ThreadPoolExecutor] = []

    def slots(intake: dict[str, Any]) -> asyncio.Semaphore:
        if not semaphore:  # created on first use, inside the server's event loop
            size = max(1, int(intake.get("max_concurrent_deliveries", 4)))
            semaphore.append(asyncio.Semaphore(size))
            # The intake's own threads: the API server's shared pool (anyio's, 40 threads) also runs every sync
            # endpoint of the Execution API, which the storm's running tasks call; behind them, a delivery waited
            # for a thread. These few threads only ever run deliveries.
            threads.append(ThreadPoolExecutor(max_workers=size, thread_name_prefix="toilless-intake-accept"))
        return semaphore[0]

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        try:
            credentials = await run_in_threadpool(service.provider.credentials)
        except Exception:
            log.exception("Alert intake settings could not be read")
            return _error(503, "the alert intake settings could not be read; see the API server log")
        if credentials is None or not authorized(request.headers.get("authorization"), credentials):
            return _error(401, "missing or invalid credentials", headers=_CHALLENGE)
        return JSONResponse(app.openapi())

    @app.get("/deliveries/{delivery}")
    async def delivery_status(delivery: int, request: Request) -> JSONResponse:
        """What became of an accepted delivery (same credentials as the webhook)."""
        try:
            credentials = await run_in_threadpool(service.provider.credentials)
        except Exception:
            log.exception("Alert intake settings could not be read")
            return _error(503, "the alert intake settings could not be read; see the API server log")
        if credentials is None or not authorized(request.headers.get("authorization"), credentials):
            return _error(401, "missing or invalid credentials", headers=_CHALLENGE)
        try:
            answer = await run_in_threadpool(service.delivery, delivery)
        except Exception:
            log.exception("Alert intake could not read delivery %s", delivery)
            return _error(503, "the delivery could not be read now; retry")
        if answer is None:
            return _error(404, "no such delivery (unknown, or older than the inbox retention)")
        return JSONResponse(answer)

    @app.post("/alertmanager")
    async def alertmanager(request: Request) -> JSONResponse:
        began = time.perf_counter()
        stages: dict[str, float] = {}
        if embedded:
            embedded[0].ensure_started()  # running since start-up; this restarts it if its thread ever died
        try:
            # Cached (settings_ttl_seconds): read in the event loop, no thread hop, unless the cache is stale.
            credentials = service.provider.fresh_credentials()
            if credentials is None:
                credentials = await run_in_threadpool(service.provider.credentials)
            settings = service.provider.fresh() or await run_in_threadpool(service.provider.get)
        except Exception:
            log.exception("Alert intake settings could not be read")
            return _error(503, "the alert intake settings could not be read; see the API server log")
        if credentials is None:
            return _error(503, "the alert intake has no credentials configured (Connection missing)")
        if not authorized(request.headers.get("authorization"), credentials):
            # Deliberately no detail and no header values in the log: only that a call was refused.
            log.warning(
                "Alert intake refused an unauthenticated call from %s",
                request.client.host if request.client else "?",
            )
            return _error(401, "missing or invalid credentials", headers=_CHALLENGE)

        mark = time.perf_counter()
        stages["auth"] = mark - began
        limit = settings.max_payload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return _error(413, f"payload larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _error(413, f"payload larger than {limit} bytes")
        mark = _lap(stages, "receive", mark)
        try:
            # Deep nesting, huge numbers, lone surrogates: 400 here, never a server error and a retry loop.
            data = parse_body(bytes(body))
        except BadBody as err:
            return _error(400, str(err))
        mark = _lap(stages, "parse", mark)
        try:
            payload = WebhookPayload.model_validate(data)
        except ValidationError as err:
            errors = validation_errors(err)
            receiver = data.get("receiver") if isinstance(data, dict) else None
            await run_in_threadpool(
                functools.partial(
                    service.notify_rejected,
                    errors,
                    None,
                    settings,
                    receiver=receiver if isinstance(receiver, str) else "",
                )
            )
            return _error(422, "not an Alertmanager webhook payload (version 4)", errors)
        mark = _lap(stages, "model", mark)
        try:
            # At most a few deliveries hold a worker thread at once: the API server's thread pool also serves the
            # UI and the task execution API, which a storm of alerts must not starve. The rest wait here, threadless.
            async with slots(settings.intake):
                mark = _lap(stages, "slot", mark)

                def accept() -> dict[str, Any]:
                    # In the intake's thread: how long the hop took (a free thread, then the GIL), then the work.
                    _lap(stages, "thread", mark)
                    try:
                        return service.accept(payload, data, stages=stages)
                    finally:
                        stages["done_in_thread"] = time.perf_counter()

                result = await asyncio.get_running_loop().run_in_executor(threads[0], accept)
        except Rejected as err:
            return _error(err.status_code, err.detail, err.errors)
        except (Unavailable, IntakeError) as err:
            log.warning("Alert intake unavailable: %s", err.detail)
            return _error(err.status_code, err.detail, err.errors)
        except Exception:
            # Unknown failure: 503 makes Alertmanager retry, which is safe (idempotent decisions).
            log.exception("Alert intake failed on a delivery from receiver %s", payload.receiver)
            return _error(503, "internal error in the alert intake; the delivery can be retried")
        # Back on the event loop: how long the answer waited for it (the loop or the GIL busy elsewhere).
        mark = _lap(stages, "back", stages.pop("done_in_thread"))
        response = JSONResponse(result)
        stages["serialise"] = time.perf_counter() - mark
        stages["total"] = time.perf_counter() - began
        timings.record(stages)
        return response

    return app


def _lap(stages: dict[str, float], name: str, since: float) -> float:
    """Record ``name`` as the time since ``since``; return now (the next stage's start)."""
    now = time.perf_counter()
    stages[name] = now - since
    return now


def _error(
    status: int, detail: str, errors: list[str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def worker_mode(service: IntakeService) -> str:
    """Where decisions run (:func:`toilless.intake.worker.resolve_mode`); unreadable settings: ``process``."""
    try:
        return resolve_mode(service.provider.get().intake)
    except Exception:
        log.exception("Alert intake settings could not be read; leaving decisions to the worker process")
        return "process"


_heap_frozen = threading.Event()


def freeze_startup_heap() -> bool:
    """Once per process: collect garbage, then move every object alive now to the collector's permanent generation.

    Every full (generation 2) collection scans every tracked object and holds the GIL throughout: in the API server
    the event loop, the webhook's threads and the Execution API all stop. Airflow's API server holds about 620,000
    such objects once started (modules, classes, its routers, the plugins), measured at 0.3 s of CPU per full
    collection on this 2-core machine (0 s once frozen). A storm's allocations trigger full collections while it
    lasts, and every delivery in flight then waits for one. Objects alive at start-up live as long as the process, so
    the collector has nothing to find among them; objects created later are collected as before. Airflow does the
    same in its scheduler's executor and DAG processor (``gc.freeze()``). Returns whether this call froze.
    """
    if _heap_frozen.is_set():
        return False
    _heap_frozen.set()
    gc.collect()  # garbage frozen now would never be collected
    gc.freeze()
    log.info(
        "Alert intake: %d start-up objects of the API server frozen for the garbage collector", gc.get_freeze_count()
    )
    return True


_app: FastAPI | None = None


def get_app() -> FastAPI:
    """The process-wide app (the plugin mounts this one)."""
    global _app
    if _app is None:
        _app = create_app(freeze_heap=True)
    return _app
