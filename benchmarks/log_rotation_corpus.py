"""A benchmark corpus of log styles the project did not write itself, generated with varied, realistic content.

Five styles, each an endless line generator (deterministic for a seed), so compression ratios are those of real
logs and not of repeated templates:

* ``access``: nginx/Apache "combined" access log with request time (clients from a skewed pool of real-looking
  IPv4/IPv6 addresses, real user agents, paths with ids and query strings, referers, log-normal sizes/latencies).
* ``json``: structured JSON lines of a Go/Python microservice (request ids, trace/span ids, durations, users,
  nested http object, occasional errors with fields).
* ``traces``: a Python + Java service log where ~4 % of events carry a multi-line stack trace (varied frames,
  line numbers and exception messages), the rest are ordinary INFO/DEBUG lines.
* ``syslog``: RFC 3164 syslog of a Linux host (sshd, CRON, kernel, systemd, sudo, postfix, dockerd) with pids,
  ports, key fingerprints and message ids.
* ``orders``: the order processor of SOPS.md (sandbox/log_rotation_data.py).

Timestamps advance with jitter in every style.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox.log_rotation_data import order_lines, write_lines

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
    "Go-http-client/2.0",
    "kube-probe/1.31",
    "Prometheus/2.53.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 "
    "Edg/130.0.0.0",
)
_AGENT_WEIGHTS = (30, 14, 8, 12, 9, 4, 2, 3, 3, 4, 2, 5, 2, 2)
_WEB_PATHS = (
    "/",
    "/index.html",
    "/static/js/app.{hex}.js",
    "/static/css/main.{hex}.css",
    "/images/products/{id}.jpg",
    "/api/v1/products/{id}",
    "/api/v1/products?category={cat}&page={page}&sort=price",
    "/api/v1/cart",
    "/api/v1/orders/{id}",
    "/api/v1/search?q={word}&page={page}",
    "/login",
    "/healthz",
    "/metrics",
    "/favicon.ico",
    "/wp-login.php",
    "/.env",
)
_WEB_WEIGHTS = (6, 3, 10, 6, 14, 14, 8, 5, 6, 8, 2, 6, 2, 3, 1, 1)
_WORDS = (
    "shoes", "laptop", "usb-c+cable", "coffee", "headphones", "monitor", "desk", "chair", "backpack", "jacket",
    "phone+case", "keyboard", "mouse", "lamp", "bottle", "tent", "bike", "watch", "camera", "book",
)  # fmt: skip
_CATEGORIES = ("electronics", "garden", "fashion", "books", "sports", "home", "toys", "beauty")
_REFERERS = (
    "-",
    "https://www.google.com/",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://www.bing.com/",
    "https://t.co/",
)
_REFERER_WEIGHTS = (40, 20, 25, 8, 4, 3)
_STATUSES = (200,) * 40 + (301, 302, 304, 304, 304, 400, 401, 403, 404, 404, 404, 499, 500, 502, 503)


def _ip(rng: random.Random, pool: list[str]) -> str:
    # Most requests come from a few thousand returning clients (and the load balancer's health checks), the rest
    # from anywhere.
    if rng.random() < 0.8:
        return pool[int(len(pool) ** rng.random()) - 1]
    if rng.random() < 0.1:
        return ":".join(f"{rng.getrandbits(16):x}" for _ in range(4)) + "::" + f"{rng.getrandbits(16):x}"
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ip_pool(rng: random.Random, size: int = 4000) -> list[str]:
    return [
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(size)
    ]


def _web_path(rng: random.Random) -> str:
    path = rng.choices(_WEB_PATHS, _WEB_WEIGHTS)[0]
    return (
        path.replace("{id}", str(int(120_000 ** rng.random())))
        .replace("{hex}", f"{rng.getrandbits(32):08x}" if rng.random() < 0.05 else "3f9a1c2e")
        .replace("{cat}", rng.choice(_CATEGORIES))
        .replace("{page}", str(int(40 ** rng.random())))
        .replace("{word}", rng.choice(_WORDS))
    )


def access_lines(rng: random.Random, start: datetime) -> Iterator[str]:
    """nginx ``log_format combined`` plus ``rt=$request_time uct=$upstream_connect_time urt=...``."""
    pool = _ip_pool(rng)
    moment = start
    while True:
        moment += timedelta(microseconds=rng.randrange(0, 12_000))
        status = rng.choice(_STATUSES)
        method = "GET" if rng.random() < 0.86 else rng.choice(("POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"))
        size = 0 if status in (304, 499) else int(rng.lognormvariate(8.0, 1.6))
        request_time = rng.lognormvariate(-3.5, 1.2)
        upstream = f"{request_time * rng.uniform(0.6, 0.98):.3f}" if rng.random() < 0.7 else "-"
        user = "-" if rng.random() < 0.97 else f"user{rng.randrange(1, 5000)}"
        yield (
            f"{_ip(rng, pool)} - {user} [{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000] "
            f'"{method} {_web_path(rng)} HTTP/{rng.choice(("1.1", "1.1", "2.0"))}" {status} {size} '
            f'"{rng.choices(_REFERERS, _REFERER_WEIGHTS)[0]}" "{rng.choices(_AGENTS, _AGENT_WEIGHTS)[0]}" '
            f"rt={request_time:.3f} uct={'0.000' if upstream != '-' else '-'} urt={upstream}\n"
        )


_SERVICES = ("checkout", "payments", "inventory", "search", "auth", "notifications")
_JSON_MESSAGES = (
    ("info", "request completed"),
    ("info", "request completed"),
    ("info", "request completed"),
    ("debug", "cache lookup"),
    ("info", "order state changed"),
    ("warn", "slow downstream call"),
    ("info", "token refreshed"),
    ("error", "downstream call failed"),
    ("info", "message published"),
)
_ERRORS = (
    "context deadline exceeded",
    "connection reset by peer",
    "dial tcp 10.42.3.17:5432: connect: connection refused",
    "rpc error: code = Unavailable desc = upstream connect error",
    'pq: duplicate key value violates unique constraint "orders_pkey"',
)
_ORDER_STATES = ("created", "paid", "packed", "shipped", "delivered", "cancelled")


def json_lines(rng: random.Random, start: datetime) -> Iterator[str]:
    """JSON-structured lines as zap/structlog write them, one object per line."""
    moment = start
    pods = [f"{service}-{rng.getrandbits(32):08x}-{rng.getrandbits(20):05x}" for service in _SERVICES for _ in range(3)]
    while True:
        moment += timedelta(microseconds=rng.randrange(0, 15_000))
        level, message = rng.choice(_JSON_MESSAGES)
        pod = rng.choice(pods)
        record: dict[str, object] = {
            "ts": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": level,
            "logger": f"{pod.split('-')[0]}.{rng.choice(('http', 'grpc', 'worker', 'db'))}",
            "msg": message,
            "pod": pod,
            "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "trace_id": f"{rng.getrandbits(128):032x}",
            "span_id": f"{rng.getrandbits(64):016x}",
        }
        if message in ("request completed", "slow downstream call", "downstream call failed"):
            record["http"] = {
                "method": "GET" if rng.random() < 0.7 else "POST",
                "path": _web_path(rng).split("?")[0],
                "status": rng.choice(_STATUSES),
                "duration_ms": round(rng.lognormvariate(3.0, 1.1), 3),
                "bytes": int(rng.lognormvariate(7.0, 1.5)),
            }
            record["user_id"] = int(500_000 ** rng.random())
        if message == "order state changed":
            record["order_id"] = f"ord_{rng.getrandbits(48):012x}"
            record["from"], record["to"] = rng.sample(_ORDER_STATES, 2)
        if message == "cache lookup":
            record["key"] = f"product:{int(120_000 ** rng.random())}"
            record["hit"] = rng.random() < 0.83
        if level == "error":
            record["error"] = rng.choice(_ERRORS)
            record["attempt"] = rng.randrange(1, 4)
        yield json.dumps(record, separators=(",", ":")) + "\n"


_PY_FRAMES = (
    ('/usr/local/lib/python3.11/site-packages/django/core/handlers/exception.py', 'inner', 'response = get_response(request)'),
    ('/usr/local/lib/python3.11/site-packages/django/core/handlers/base.py', '_get_response', 'response = wrapped_callback(request, *callback_args, **callback_kwargs)'),
    ('/app/shop/views/orders.py', 'create_order', 'order = service.place(cart, user=request.user)'),
    ('/app/shop/services/orders.py', 'place', 'payment = self.payments.charge(order.total, token=cart.payment_token)'),
    ('/app/shop/clients/payments.py', 'charge', 'response = self.session.post(url, json=payload, timeout=self.timeout)'),
    ('/usr/local/lib/python3.11/site-packages/requests/sessions.py', 'post', 'return self.request("POST", url, data=data, json=json, **kwargs)'),
    ('/usr/local/lib/python3.11/site-packages/requests/adapters.py', 'send', 'raise ReadTimeout(e, request=request)'),
    ('/app/shop/models/inventory.py', 'reserve', 'raise OutOfStock(sku=item.sku, wanted=item.quantity, left=stock.available)'),
    ('/usr/local/lib/python3.11/site-packages/psycopg2/extras.py', 'execute', 'return super().execute(query, vars)'),
)  # fmt: skip
_PY_ERRORS = (
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='payments.internal', port=443): Read timed out. "
    "(read timeout={t})",
    "shop.models.inventory.OutOfStock: sku=SKU-{n} wanted={q2} left=0",
    "psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update",
    "KeyError: 'shipping_address'",
    "ValueError: invalid literal for int() with base 10: '{n}x'",
)
_JAVA_FRAMES = (
    "org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:{l})",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:{l})",
    "com.example.billing.InvoiceController.create(InvoiceController.java:{l})",
    "com.example.billing.InvoiceService.issue(InvoiceService.java:{l})",
    "com.example.billing.TaxClient.rateFor(TaxClient.java:{l})",
    "org.apache.http.impl.client.CloseableHttpClient.execute(CloseableHttpClient.java:{l})",
    "java.base/java.net.SocketInputStream.socketRead0(Native Method)",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:{l})",
    "org.hibernate.engine.jdbc.spi.SqlExceptionHelper.convert(SqlExceptionHelper.java:{l})",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:{l})",
    "java.base/java.lang.Thread.run(Thread.java:{l})",
)
_JAVA_ERRORS = (
    "java.net.SocketTimeoutException: Read timed out",
    'java.lang.NullPointerException: Cannot invoke "com.example.billing.Customer.getVatId()" because "c" is null',
    "org.springframework.dao.DataIntegrityViolationException: could not execute statement; constraint [uk_invoice_no]",
    "java.lang.IllegalStateException: invoice {n} already issued",
)
_INFO = (
    "POST /api/orders 201 in {ms}ms user={u}",
    "GET /api/orders/{n} 200 in {ms}ms user={u}",
    "invoice {n} issued for customer {u} amount={amt} EUR",
    "payment {hex} authorised in {ms}ms",
    "worker heartbeat queue=default active={q} reserved={q2}",
    "cache refresh took {ms}ms keys={n}",
)


def trace_lines(rng: random.Random, start: datetime) -> Iterator[str]:
    """A Python (Django) and a Java (Spring) service interleaved; some events carry a stack trace."""
    moment = start
    while True:
        moment += timedelta(microseconds=rng.randrange(100, 60_000))
        java = rng.random() < 0.5
        stamp = (
            moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
            if java
            else moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"
        )
        fields = {
            "ms": int(rng.lognormvariate(3.2, 1.0)),
            "u": int(200_000 ** rng.random()),
            "n": rng.randrange(1, 10_000_000),
            "amt": f"{rng.lognormvariate(3.5, 1.0):.2f}",
            "hex": f"{rng.getrandbits(48):012x}",
            "q": rng.randrange(0, 16),
            "q2": rng.randrange(0, 4),
        }
        if rng.random() >= 0.04:
            text = rng.choice(_INFO).format(**fields)
            if java:
                yield f"{stamp}  INFO 1 --- [nio-8080-exec-{rng.randrange(1, 200)}] c.e.billing.Api : {text}\n"
            else:
                yield f"{stamp} INFO [shop.api] [pid {rng.randrange(7, 40)}] {text}\n"
            continue
        if java:
            error = rng.choice(_JAVA_ERRORS).format(**fields)
            lines = [f"{stamp} ERROR 1 --- [nio-8080-exec-{rng.randrange(1, 200)}] c.e.billing.Api : request failed\n"]
            lines.append(f"{error}\n")
            frames = rng.sample(_JAVA_FRAMES, rng.randrange(4, len(_JAVA_FRAMES)))
            lines.extend(f"\tat {frame.format(l=rng.randrange(20, 1500))}\n" for frame in frames)
            if rng.random() < 0.3:
                lines.append(f"\t... {rng.randrange(10, 120)} common frames omitted\n")
            yield "".join(lines)
        else:
            lines = [f"{stamp} ERROR [shop.api] Internal Server Error: /api/orders/{fields['n']}\n"]
            lines.append("Traceback (most recent call last):\n")
            for path, function, source in rng.sample(_PY_FRAMES, rng.randrange(3, 7)):
                lines.append(f'  File "{path}", line {rng.randrange(10, 900)}, in {function}\n    {source}\n')
            lines.append(rng.choice(_PY_ERRORS).format(t=rng.choice((5, 10, 30)), **fields) + "\n")
            yield "".join(lines)


_HOSTS = ("web-01", "web-02", "db-01", "worker-03", "bastion")
_USERS = ("deploy", "ubuntu", "alice", "bob", "ci-runner", "root", "admin", "test", "oracle", "git")


def syslog_lines(rng: random.Random, start: datetime) -> Iterator[str]:
    """RFC 3164 lines as rsyslog writes /var/log/syslog and auth.log."""
    moment = start
    pool = _ip_pool(rng, 300)
    while True:
        moment += timedelta(milliseconds=rng.randrange(0, 900))
        host = rng.choice(_HOSTS)
        head = f"{_MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S} {host}"
        roll = rng.random()
        pid = rng.randrange(300, 4_000_000)
        if roll < 0.25:
            ip = _ip(rng, pool)
            if rng.random() < 0.6:
                user = rng.choice(_USERS)
                yield f"{head} sshd[{pid}]: Invalid user {user} from {ip} port {rng.randrange(1024, 65535)}\n"
                yield f"{head} sshd[{pid}]: Connection closed by invalid user {user} {ip} port {rng.randrange(1024, 65535)} [preauth]\n"
            else:
                fingerprint = "".join(
                    rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43)
                )
                yield f"{head} sshd[{pid}]: Accepted publickey for deploy from {ip} port {rng.randrange(1024, 65535)} ssh2: ED25519 SHA256:{fingerprint}\n"
                yield f"{head} sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)\n"
        elif roll < 0.45:
            yield f"{head} CRON[{pid}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)\n"
        elif roll < 0.6:
            unit = rng.choice(
                (
                    "logrotate.service",
                    "apt-daily.service",
                    "certbot.timer",
                    "fstrim.service",
                    "sysstat-collect.service",
                    "phpsessionclean.service",
                )
            )
            verb = rng.choice(("Starting", "Finished", "Started", "Deactivated successfully."))
            if verb.startswith("Deactivated"):
                yield f"{head} systemd[1]: {unit}: Deactivated successfully.\n"
            else:
                yield f"{head} systemd[1]: {verb} {unit} - {unit.split('.')[0].replace('-', ' ').title()}.\n"
        elif roll < 0.75:
            uptime = (moment - start).total_seconds() + 86_400
            src = _ip(rng, pool)
            yield (
                f"{head} kernel: [{uptime:12.6f}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:{rng.getrandbits(8):02x}:{rng.getrandbits(8):02x}:{rng.getrandbits(8):02x}:"
                f"fe:ff:ff:ff:ff:ff:08:00 SRC={src} DST=10.0.0.{rng.randrange(2, 60)} LEN={rng.choice((40, 44, 52, 60))} TOS=0x00 PREC=0x00 TTL={rng.randrange(30, 250)} "
                f"ID={rng.randrange(0, 65535)} PROTO=TCP SPT={rng.randrange(1024, 65535)} DPT={rng.choice((22, 23, 80, 443, 3389, 5432, 6379, 8080))} WINDOW={rng.randrange(1024, 65535)} RES=0x00 SYN URGP=0\n"
            )
        elif roll < 0.85:
            queue = f"{rng.getrandbits(40):010X}"
            yield f"{head} postfix/smtp[{pid}]: {queue}: to=<{rng.choice(_USERS)}{rng.randrange(1, 999)}@example.org>, relay=mx.example.org[203.0.113.{rng.randrange(1, 254)}]:25, delay={rng.uniform(0.1, 9):.2f}, delays=0.01/0/{rng.uniform(0, 1):.2f}/{rng.uniform(0, 5):.2f}, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {rng.getrandbits(40):010X})\n"
        elif roll < 0.93:
            container = f"{rng.getrandbits(64):016x}"
            yield f'{head} dockerd[{rng.randrange(600, 900)}]: time="{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond * 1000:09d}Z" level=info msg="ignoring event" container={container}{container[:48]} module=libcontainerd namespace=moby topic=/tasks/delete type="*events.TaskDelete"\n'
        else:
            yield f"{head} sudo[{pid}]:   deploy : TTY=pts/{rng.randrange(0, 6)} ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart {rng.choice(('nginx', 'shop-api', 'billing', 'postgresql'))}\n"


STYLES: dict[str, Callable[[random.Random, datetime], Iterator[str]]] = {
    "access": access_lines,
    "json": json_lines,
    "traces": trace_lines,
    "syslog": syslog_lines,
    "orders": order_lines,
}
FILE_NAMES = {
    "access": "access.log",
    "json": "service.json.log",
    "traces": "api.log",
    "syslog": "syslog.log",
    "orders": "order_processing.log",
}


def write_style(path: Path, style: str, size_bytes: int, *, seed: int = 11) -> int:
    """Write about ``size_bytes`` of ``style`` lines to ``path`` (overwriting); returns the bytes written."""
    rng = random.Random(f"{style}-{seed}")
    lines = STYLES[style](rng, datetime(2026, 11, 21, 0, 0, tzinfo=UTC))
    with path.open("wb") as handle:
        return write_lines(handle, lines, size_bytes)
