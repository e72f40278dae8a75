#!/usr/bin/env python3
"""ClickHouse's HTTP interface over the real ClickHouse engine (chdb), for the test bed.

chdb is ClickHouse 26.9 as an in-process library with no server of its own. This program serves
ClickHouse's HTTP interface over one chdb session, behaving as ClickHouse's own HTTP handler does
as far as a client can see:

- `GET /ping`, `GET /` and `/replicas_status` answer `Ok.`; other GETs need `/?...` or `/query?...`.
- The query is the `query` URL parameter, a newline, then the request body. GET and HEAD are
  read-only (Code 164 READONLY, HTTP 500, ClickHouse's own message).
- URL parameters: `database`, `default_format` (TabSeparated by default), `query_id`,
  `param_<name>` for `{name:Type}` placeholders, `user`/`password`; every other parameter is a
  setting for that one query (unknown ones fail with Code 115 UNKNOWN_SETTING, HTTP 404).
  Settings, the current database and SET statements never outlive their request.
- Credentials: HTTP basic auth, `X-ClickHouse-User`/`X-ClickHouse-Key`, or `user`/`password`
  parameters, with ClickHouse's rules (no mixing) and errors (Code 516, HTTP 403).
- `GET /inplace/engine-time` (the test bed's own, not ClickHouse's; counts only, no
  credentials): the engine's execution time per statement kind (SELECT, ATTACH, CHECK, DROP,
  DETACH, SYSTEM, ...: ALTER counted by its partition command) since start, as JSON;
  `?reset=1` starts the counters again. Benchmarks compare a restore's wall time with it. Two
  entries are not statements of the client's: `_session` (the USE and SET statements this server
  runs around a request to apply its database and settings, and to undo them) and `_parse` (the
  engine's parser classifying each request); both hold the engine as statements do.
- Errors: body `Code: N. DB::Exception: ... (NAME) (version V)` and a newline, header
  `X-ClickHouse-Exception-Code`, HTTP status from ClickHouse's exceptionCodeToHTTPStatus.

`--config-file FILE` hands the engine a ClickHouse server config (the test bed's has `<macros>`,
which fill `system.macros`). Standard library plus chdb only. Binds loopback unless told otherwise. One line per request on
stderr (never a password). The password comes from the environment variable named by
--password-env (default INPLACE_CH_SERVER_PASSWORD) or from --password-file, never from argv.
"""

import argparse
import base64
import hmac
import http.server
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from urllib.parse import parse_qsl, urlsplit

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by
# error name; the numbers are looked up in the engine itself at start (errorCodeToName).
# REQUIRED_PASSWORD also gets `WWW-Authenticate: Basic realm="ClickHouse server HTTP API"`.
STATUS_BY_ERROR_NAME = {
    "REQUIRED_PASSWORD": 401,
    "UNKNOWN_USER": 403, "WRONG_PASSWORD": 403, "AUTHENTICATION_FAILED": 403,
    "SET_NON_GRANTED_ROLE": 403, "ACCESS_DENIED": 403,
    "BAD_ARGUMENTS": 400, "CANNOT_COMPILE_REGEXP": 400, "CANNOT_PARSE_TEXT": 400,
    "CANNOT_PARSE_ESCAPE_SEQUENCE": 400, "CANNOT_PARSE_QUOTED_STRING": 400,
    "CANNOT_PARSE_DATE": 400, "CANNOT_PARSE_DATETIME": 400, "CANNOT_PARSE_NUMBER": 400,
    "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING": 400, "CANNOT_PARSE_IPV4": 400,
    "CANNOT_PARSE_IPV6": 400, "CANNOT_PARSE_INPUT_ASSERTION_FAILED": 400,
    "CANNOT_PARSE_UUID": 400, "DUPLICATE_COLUMN": 400, "ILLEGAL_COLUMN": 400,
    "UNKNOWN_ELEMENT_IN_AST": 400, "UNKNOWN_TYPE_OF_AST_NODE": 400, "THERE_IS_NO_COLUMN": 400,
    "TOO_DEEP_AST": 400, "TOO_BIG_AST": 400, "UNEXPECTED_AST_STRUCTURE": 400,
    "SYNTAX_ERROR": 400, "INCORRECT_DATA": 400, "TYPE_MISMATCH": 400,
    "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE": 400,
    "UNKNOWN_TABLE": 404, "UNKNOWN_FUNCTION": 404, "UNKNOWN_IDENTIFIER": 404, "UNKNOWN_TYPE": 404,
    "UNKNOWN_STORAGE": 404, "UNKNOWN_DATABASE": 404, "UNKNOWN_SETTING": 404,
    "UNKNOWN_DIRECTION_OF_SORTING": 404, "UNKNOWN_AGGREGATE_FUNCTION": 404, "UNKNOWN_FORMAT": 404,
    "UNKNOWN_DATABASE_ENGINE": 404, "UNKNOWN_TYPE_OF_QUERY": 404, "UNKNOWN_ROLE": 404,
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503, "CANNOT_OPEN_FILE": 503, "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

# Codes this server raises itself (checked against the engine's names at start).
KNOWN_CODES = {
    "UNSUPPORTED_METHOD": 1, "SYNTAX_ERROR": 62, "NOT_IMPLEMENTED": 48, "UNKNOWN_SETTING": 115,
    "READONLY": 164, "HTTP_LENGTH_REQUIRED": 381, "AUTHENTICATION_FAILED": 516,
    "STD_EXCEPTION": 1001, "UNKNOWN_DATABASE": 81,
}

# URL parameters that are not settings (HTTPHandler's reserved_param_names, plus `query`).
RESERVED_PARAMS = {
    "compress", "decompress", "user", "password", "quota_key", "query_id", "stacktrace", "role",
    "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
    "client_protocol_version", "close_session", "database", "default_format", "query",
}

NO_HANDLE_TEXT = (
    "There is no handle {path}\n\n"
    "Use / or /ping for health checks.\n"
    "Or /replicas_status for more sophisticated health checks.\n\n"
    "Send queries from your program with POST method or GET /?query=...\n\n"
    "Use clickhouse-client:\n\n"
    "For interactive data analysis:\n"
    "    clickhouse-client\n\n"
    "For batch query processing:\n"
    "    clickhouse-client --query='SELECT 1' > result\n"
    "    clickhouse-client < query > result\n"
)

SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXCEPTION_PREFIX = re.compile(r"Code: (\d+)\. DB::Exception: ")
TRAILING_NAME = re.compile(r"\(([A-Z0-9_]+)\)\s*$")
FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)(\s+SETTINGS\b.*)?\s*;?\s*$", re.I | re.S)
LEADING_NOISE = re.compile(r"^(\s+|--[^\n]*(\n|$)|#[^\n]*(\n|$)|/\*.*?\*/|\()+", re.S)
WRITE_KEYWORDS = {
    "INSERT", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "DELETE", "UPDATE", "OPTIMIZE",
    "ATTACH", "DETACH", "SYSTEM", "KILL", "GRANT", "REVOKE", "BACKUP", "RESTORE", "UNDROP",
    "EXCHANGE", "MOVE", "REPLACE", "UPSERT", "BEGIN", "COMMIT", "ROLLBACK",
}
READ_KEYWORDS = {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "CHECK", "FROM"}


class QueryError(Exception):
    """An error to answer as ClickHouse does: code plus message `Code: N. DB::Exception: ...`."""

    def __init__(self, code, message, www_authenticate=False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.www_authenticate = www_authenticate


def exception_text(code, name, text):
    """ClickHouse's exception text: `Code: N. DB::Exception: text. (NAME)`."""
    text = text.rstrip()
    if text and not text.endswith("."):
        text += "."
    return f"Code: {code}. DB::Exception: {text} ({name})"


def normalize_engine_error(raw):
    """(code, text) from a chdb exception; chdb sometimes nests `Code: N. DB::Exception:` twice or
    three times with versions in between: keep the innermost message, without any version."""
    raw = raw.strip()
    pos = 0
    codes = []
    while True:
        m = EXCEPTION_PREFIX.match(raw, pos)
        if not m:
            break
        codes.append(int(m.group(1)))
        pos = m.end()
    if not codes:
        first = raw.splitlines()[0] if raw else "Unknown error"
        return KNOWN_CODES["STD_EXCEPTION"], exception_text(KNOWN_CODES["STD_EXCEPTION"], "STD_EXCEPTION", first)
    core = raw[pos:]
    cut = core.find(" (version ")
    if cut >= 0:
        core = core[:cut]
    return codes[-1], f"Code: {codes[-1]}. DB::Exception: {core}".rstrip()


def quote_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def content_type_for(fmt):
    f = fmt.lower()
    if f.startswith("tabseparated") or f.startswith("tsv"):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        header = "present" if "withnames" in f else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if f.startswith("json") or f in ("ndjson", "jsonl"):
        return "application/json; charset=UTF-8"
    if f == "xml":
        return "application/xml; charset=UTF-8"
    if f.startswith("rowbinary") or f in (
        "native", "parquet", "arrow", "arrowstream", "orc", "avro", "protobuf", "protobufsingle",
        "msgpack", "bsoneachrow", "capnproto", "npy", "protobuflist",
    ):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def first_keyword(query):
    rest = LEADING_NOISE.sub("", query, count=1)
    m = re.match(r"[A-Za-z]+", rest)
    return m.group(0).upper() if m else ""


def statement_kind(query):
    """What a statement does, for the engine-time counters: the first keyword, and for ALTER the
    partition command (ALTER ... ATTACH PART counts as ATTACH)."""
    keyword = first_keyword(query)
    if keyword == "ALTER":
        m = re.search(r"\b(ATTACH|DETACH|DROP|FREEZE|UNFREEZE|MOVE|REPLACE|FETCH|DELETE|UPDATE)\s+(PART|PARTITION)?", query, re.I)
        return m.group(1).upper() if m else "ALTER"
    return keyword or "UNKNOWN"


def latin1_to_utf8(text):
    return text.encode("latin-1", errors="replace").decode("utf-8", errors="replace")


class Engine:
    """The one chdb session, its lock, and what a request must not leave behind."""

    def __init__(self, data_path, config_file=None):
        from chdb import session  # imported here so --help works without chdb

        started = time.monotonic()
        # chdb reads a server config file named in the path (its <macros> fill system.macros).
        self.session = session.Session(data_path + (f"?config-file={config_file}" if config_file else ""))
        self.lock = threading.Lock()
        # Seconds the engine spent executing statements, per kind (statement_kind): what a
        # benchmark compares a restore's wall time with (GET /inplace/engine-time).
        self.spent = {}
        raw_conn = getattr(getattr(self.session, "_conn", None), "_conn", None)
        self.classify = getattr(raw_conn, "classify_query", None)
        # A real server does not run `SELEC` as `SELECT SELEC`: chdb turns implicit_select on.
        self._query("SET implicit_select = 0")
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self.default_database = self._scalar("SELECT currentDatabase()")
        self.baseline = self._changed_settings()
        names = "','".join(sorted(set(STATUS_BY_ERROR_NAME) | set(KNOWN_CODES)))
        rows = self._query(
            f"SELECT number, errorCodeToName(number) FROM numbers(2000) "
            f"WHERE errorCodeToName(number) IN ('{names}')", "JSONCompactEachRow")
        self.code_by_name = {}
        for line in rows.splitlines():
            if line.strip():
                number, name = json.loads(line)
                self.code_by_name[name] = int(number)
        for name, number in KNOWN_CODES.items():
            if self.code_by_name.get(name, number) != number:
                log(f"warning: the engine numbers {name} {self.code_by_name[name]}, expected {number}")
        self.status_by_code = {self.code_by_name[n]: s for n, s in STATUS_BY_ERROR_NAME.items() if n in self.code_by_name}
        self.open_seconds = time.monotonic() - started

    def _query(self, sql, fmt="TabSeparated", params=None):
        return self.session.query(sql, fmt, params=params or {}).bytes().decode("utf-8")

    def _scalar(self, sql):
        return self._query(sql).strip()

    def _changed_settings(self):
        out = {}
        for line in self._query("SELECT name, value FROM system.settings WHERE changed", "JSONEachRow").splitlines():
            if line.strip():
                row = json.loads(line)
                if row["name"] != "database":
                    out[row["name"]] = row["value"]
        return out

    def _restore_settings(self, names=None):
        """Put settings back as they were at start: the given names, or every changed one."""
        if names is None:
            current = self._changed_settings()
            names = {n for n in current if self.baseline.get(n) != current[n]}
            names |= {n for n in self.baseline if n not in current}
        parts = []
        for name in sorted(names):
            if name in self.baseline:
                parts.append(f"{name} = {quote_string(self.baseline[name])}")
            else:
                parts.append(f"{name} = DEFAULT")
        if parts:
            self.session.query("SET " + ", ".join(parts), "TabSeparated")

    def classify_query(self, query):
        """(class name, statement count), from the engine's parser when chdb offers it."""
        if self.classify is not None:
            try:
                info = self.classify(query)
                return info["query_class"].name, int(info["statement_count"])
            except Exception:  # noqa: BLE001 - fall back to keywords
                pass
        keyword = first_keyword(query)
        if not keyword:
            return "UNKNOWN", 0
        if keyword in READ_KEYWORDS:
            return "READ_ONLY", 1
        if keyword in ("SET", "USE"):
            return "CONTROL", 1
        return "MUTATING", 1

    def run(self, query, fmt, settings, params, database, keyword):
        """Runs one query with its own settings and database; returns the chdb result. `keyword` is
        the query's first word: after SET or USE the session is put back as it was."""
        with self.lock:
            used_database = False
            set_names = []
            full_restore = keyword == "SET"
            held = time.monotonic()
            executed = 0.0
            try:
                if database:
                    used_database = True
                    self.session.query(f"USE {quote_identifier(database)}", "TabSeparated")
                if settings:
                    merged = {}
                    for name, value in settings:
                        merged[name] = value  # the last value of a repeated parameter wins
                    try:
                        self.session.query(
                            "SET " + ", ".join(f"{n} = {quote_string(v)}" for n, v in merged.items()),
                            "TabSeparated")
                    except Exception:
                        full_restore = True  # whatever part of it took effect is undone below
                        raise
                    set_names = list(merged)
                began = time.monotonic()
                try:
                    return self.session.query(query, fmt, params=params)
                finally:
                    executed = time.monotonic() - began
                    self._count(statement_kind(query), executed)
            finally:
                try:
                    if used_database or keyword == "USE":
                        self.session.query(f"USE {quote_identifier(self.default_database)}", "TabSeparated")
                    if full_restore:
                        self._restore_settings()
                    elif set_names:
                        self._restore_settings(set_names)
                except Exception as e:  # noqa: BLE001 - never leave a request's state behind silently
                    log(f"error: could not restore the session after a request: {e}")
                # The statements this server adds around a request's (USE, SET and their undoing:
                # a real server applies per-query settings without statements), counted apart.
                self._count("_session", time.monotonic() - held - executed)

    def _count(self, kind, seconds):
        count, total = self.spent.get(kind, (0, 0.0))
        self.spent[kind] = (count + 1, total + seconds)

    def close(self):
        with self.lock:
            try:
                self.session.close()
            except Exception as e:  # noqa: BLE001
                log(f"error closing the engine: {e}")


def log(line):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    sys.stderr.write(f"{stamp} {line}\n")
    sys.stderr.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # seconds an idle keep-alive connection may stay open

    engine = None  # set in main()
    user = None
    password = None
    display_name = socket.gethostname()

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - silence the default access log
        pass

    def send_response(self, code, message=None):
        # Like ClickHouse: a Date header, no Server header.
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    # --- plumbing -----------------------------------------------------------------------------

    def _read_body(self):
        """The request body (Content-Length or chunked); None when a POST has neither."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length is None:
            return None if self.command == "POST" else b""
        return self.rfile.read(int(length)) if int(length) > 0 else b""

    def _send(self, status, body, headers=(), content_type="text/plain; charset=UTF-8"):
        if isinstance(body, str):
            body = body.encode("utf-8")
        view = memoryview(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(view)))
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header("Connection", "Keep-Alive")
            self.send_header("Keep-Alive", f"timeout={self.timeout}")
        self.end_headers()
        if self.command != "HEAD":
            step = 1 << 20
            for start in range(0, len(view), step):
                self.wfile.write(view[start:start + step])

    def _send_error(self, code, text, www_authenticate=False):
        engine = self.engine
        status = engine.status_by_code.get(code, 500)
        headers = [("X-ClickHouse-Server-Display-Name", self.display_name),
                   ("X-ClickHouse-Exception-Code", str(code))]
        if www_authenticate:
            headers.append(("WWW-Authenticate", 'Basic realm="ClickHouse server HTTP API"'))
            status = 401
        self._send(status, f"{text} (version {engine.version})\n", headers)
        return status

    def _error(self, name, message):
        code = self.engine.code_by_name.get(name, KNOWN_CODES.get(name, 1001))
        return QueryError(code, exception_text(code, name, message))

    # --- HTTP methods -------------------------------------------------------------------------

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        started = time.monotonic()
        url = urlsplit(self.path)
        path = url.path
        try:
            # Read the whole body first, whatever the answer: keep-alive needs the stream in step.
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            body = b""
        if path == "/inplace/engine-time":
            # Not ClickHouse's: the engine's execution time per statement kind since start (or
            # the last ?reset=1), as JSON {"KIND": {"statements": N, "seconds": S}}.
            with self.engine.lock:
                spent = {k: {"statements": n, "seconds": round(s, 6)} for k, (n, s) in sorted(self.engine.spent.items())}
                if "reset=1" in url.query:
                    self.engine.spent = {}
            self._send(200, json.dumps(spent) + "\n", content_type="application/json")
            return
        if self.command in ("GET", "HEAD") and (path in ("/ping", "/replicas_status") or self.path == "/"):
            self._send(200, "Ok.\n")
            return
        is_query_url = self.command == "POST" or (path in ("/", "/query") and "?" in self.path)
        if not is_query_url:
            self._send(404, NO_HANDLE_TEXT.format(path=path), [("X-ClickHouse-Server-Display-Name", self.display_name)])
            return
        status, code, user, rows = 200, 0, "", 0
        self.log_query, self.log_query_id = "", ""
        try:
            if body is None:
                self.close_connection = True
                raise self._error("HTTP_LENGTH_REQUIRED",
                                  "The Transfer-Encoding is not chunked and there is no Content-Length header for POST request")
            params = parse_qsl(url.query, keep_blank_values=True)
            user = self._authenticate(params)
            status, rows = self._query(params, body, user, started)
        except QueryError as e:
            code = e.code
            status = self._send_error(e.code, e.message, e.www_authenticate)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
            status = 499
        except Exception as e:  # noqa: BLE001 - a bug here must still answer as ClickHouse would
            code = KNOWN_CODES["STD_EXCEPTION"]
            status = self._send_error(code, exception_text(code, "STD_EXCEPTION", f"{type(e).__name__}: {e}"))
        elapsed = (time.monotonic() - started) * 1000
        short = " ".join(self.log_query.split())
        if len(short) > 300:
            short = short[:300] + "..."
        log(f"{self.client_address[0]} {self.command} user={user or '-'} query_id={self.log_query_id or '-'} "
            f"status={status} code={code} read_rows={rows} {elapsed:.1f}ms {short!r}")

    def _authenticate(self, params):
        """The user name, checked as authenticateUserByHTTP does; raises QueryError."""
        names = {k for k, _ in params}
        # Python reads header values as Latin-1; ClickHouse compares their bytes, which clients
        # send as UTF-8: read them back as UTF-8 (a non-ASCII password must pass as it would).
        header_user = latin1_to_utf8(self.headers.get("X-ClickHouse-User", ""))
        header_key = latin1_to_utf8(self.headers.get("X-ClickHouse-Key", ""))
        authorization = self.headers.get("Authorization")
        has_headers = bool(header_user or header_key)
        has_params = "user" in names or "password" in names

        def both(a, b):
            return self._error("AUTHENTICATION_FAILED",
                               f"Invalid authentication: it is not allowed to use {a} and {b} simultaneously")

        if has_headers:
            if not header_user:
                raise self._error("AUTHENTICATION_FAILED", "Got an empty user name from X-ClickHouse HTTP headers")
            if authorization is not None:
                raise both("X-ClickHouse HTTP headers", "Authorization HTTP header")
            if has_params:
                raise both("X-ClickHouse HTTP headers", "authentication via parameters")
            user, password = header_user, header_key
        elif authorization is not None:
            if has_params:
                raise both("Authorization HTTP header", "authentication via parameters")
            scheme, _, info = authorization.strip().partition(" ")
            if scheme.lower() != "basic":
                raise self._error("AUTHENTICATION_FAILED",
                                  f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported")
            try:
                decoded = base64.b64decode(info.strip(), validate=False).decode("utf-8")
            except Exception:  # noqa: BLE001
                decoded = ""
            user, _, password = decoded.partition(":")
            if not user:
                raise self._error("AUTHENTICATION_FAILED", "Got an empty user name from Authorization HTTP header")
        else:
            values = dict(params)
            user = values.get("user", "default")
            password = values.get("password", "")
            if not user:
                raise self._error("AUTHENTICATION_FAILED", "Got an empty user name from authentication via parameters")
        user_ok = hmac.compare_digest(user.encode("utf-8"), self.user.encode("utf-8"))
        password_ok = hmac.compare_digest(password.encode("utf-8"), self.password.encode("utf-8"))
        if not (user_ok and password_ok):
            raise self._error("AUTHENTICATION_FAILED",
                              f"{user}: Authentication failed: password is incorrect, or there is no user with such name.")
        return user

    def _query(self, params, body, user, started):
        engine = self.engine
        values = {}
        settings = []
        query_params = {}
        for name, value in params:
            if name.startswith("param_"):
                query_params.setdefault(name[len("param_"):], value)
            elif not name or name in RESERVED_PARAMS:
                values.setdefault(name, value)
            else:
                settings.append((name, value))
        query_id = values.get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        self.log_query_id = query_id
        for unsupported in ("session_id", "compress", "decompress"):
            if values.get(unsupported) not in (None, "", "0", "false"):
                raise self._error("NOT_IMPLEMENTED", f"The test bed's ClickHouse server does not support the '{unsupported}' parameter")

        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity", "none"):
            raise self._error("NOT_IMPLEMENTED", f"The test bed's ClickHouse server cannot decompress '{encoding}'")
        if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            raise self._error("NOT_IMPLEMENTED", "The test bed's ClickHouse server does not support external data (multipart/form-data)")

        url_query = values.get("query", "")
        query = (url_query + "\n" if url_query else "") + body.decode("utf-8", errors="replace")
        self.log_query = query

        readonly_level = 0
        kept_settings = []
        for name, value in settings:
            if not SETTING_NAME.match(name):
                raise self._error("UNKNOWN_SETTING", f"Unknown setting '{name}'")
            if name == "readonly":
                # Never SET on the shared session: it could not be turned off again.
                try:
                    readonly_level = max(readonly_level, int(value))
                except ValueError:
                    raise self._error("CANNOT_PARSE_NUMBER" if "CANNOT_PARSE_NUMBER" in engine.code_by_name else "BAD_ARGUMENTS",
                                      f"Cannot parse readonly value '{value}'") from None
                continue
            kept_settings.append((name, value))
        http_readonly = self.command != "POST"

        if not query.strip():
            raise self._error("SYNTAX_ERROR", "Empty query")
        with engine.lock:
            parsing = time.monotonic()
            query_class, statements = engine.classify_query(query)
            engine._count("_parse", time.monotonic() - parsing)
        if statements > 1:
            raise self._error("SYNTAX_ERROR", f"Syntax error (Multi-statements are not allowed): the query holds {statements} statements")
        keyword = first_keyword(query)
        if http_readonly or readonly_level:
            allowed = (
                query_class == "READ_ONLY"
                or (query_class == "CONTROL" and keyword in ("SET", "USE"))
                or (query_class == "UNKNOWN" and keyword not in WRITE_KEYWORDS)
            )
            if not allowed:
                if http_readonly:
                    raise self._error("READONLY", f"{user}: Cannot execute query in readonly mode. For queries over HTTP, "
                                                  "method GET implies readonly. You should use method POST for modifying queries")
                raise self._error("READONLY", f"{user}: Cannot execute query in readonly mode")
        if query_class == "CONTROL" and keyword == "SET" and re.search(r"\breadonly\b", query, re.I):
            # A SET lasts for its own request only: answering without running it is the same.
            self._send(200, b"", self._success_headers(query_id, None, engine.timezone, None))
            return 200, 0

        database = self.headers.get("X-ClickHouse-Database") or values.get("database", "")
        default_format = self.headers.get("X-ClickHouse-Format") or values.get("default_format", "") or "TabSeparated"
        m = FORMAT_CLAUSE.search(query) if keyword != "INSERT" else None
        output_format = m.group(1) if m else default_format

        try:
            result = engine.run(query, default_format, kept_settings, query_params, database, keyword)
        except QueryError:
            raise
        except Exception as e:  # noqa: BLE001 - chdb raises its own error types
            code, text = normalize_engine_error(str(e))
            raise QueryError(code, text) from None

        view = result.get_memview().view()
        produces_rows = query_class == "READ_ONLY" or len(view) > 0
        timezone = dict(kept_settings).get("session_timezone") or engine.timezone
        summary = {
            "read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
            "total_rows_to_read": str(result.rows_read()), "result_bytes": str(len(view)),
            "elapsed_ns": str(int((time.monotonic() - started) * 1e9)),
        }
        headers = self._success_headers(query_id, output_format if produces_rows else None, timezone, summary)
        payload = view
        enable_compression = dict(kept_settings).get("enable_http_compression", "0").lower() in ("1", "true")
        accept = self.headers.get("Accept-Encoding", "").lower()
        if enable_compression and len(view) and ("gzip" in accept or "deflate" in accept):
            level = int(dict(kept_settings).get("http_zlib_compression_level", "3") or 3)
            if "gzip" in accept:
                compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                headers.append(("Content-Encoding", "gzip"))
            else:
                compressor = zlib.compressobj(level)
                headers.append(("Content-Encoding", "deflate"))
            payload = compressor.compress(view) + compressor.flush()
        content_type = content_type_for(output_format) if produces_rows else "text/plain; charset=UTF-8"
        self._send(200, payload, headers, content_type)
        return 200, result.rows_read()

    def _success_headers(self, query_id, output_format, timezone, summary):
        headers = [("X-ClickHouse-Server-Display-Name", self.display_name), ("X-ClickHouse-Query-Id", query_id)]
        if output_format:
            headers.append(("X-ClickHouse-Format", output_format))
        if timezone:
            headers.append(("X-ClickHouse-Timezone", timezone))
        if summary:
            headers.append(("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":"))))
        return headers


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description="ClickHouse's HTTP interface over chdb (test bed).")
    parser.add_argument("--data-path", required=True, help="the engine's data folder (made absolute)")
    parser.add_argument("--config-file", help="a ClickHouse server config file for the engine (e.g. <macros>)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password-env", default="INPLACE_CH_SERVER_PASSWORD",
                        help="environment variable holding the password (default %(default)s)")
    parser.add_argument("--password-file", help="file holding the password (first line)")
    args = parser.parse_args()

    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.readline().rstrip("\n")
    else:
        password = os.environ.get(args.password_env, "")
    data_path = os.path.abspath(args.data_path)
    os.makedirs(data_path, exist_ok=True)

    engine = Engine(data_path, os.path.abspath(args.config_file) if args.config_file else None)
    Handler.engine = engine
    Handler.user = args.user
    Handler.password = password
    server = Server((args.host, args.port), Handler)
    log(f"ClickHouse {engine.version} (chdb) on http://{args.host}:{args.port}/ data {data_path} "
        f"user {args.user}; engine opened in {engine.open_seconds:.2f}s; pid {os.getpid()}")

    stopping = threading.Event()

    def stop(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            log(f"signal {signum}: stopping")
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()
        log("stopped")


if __name__ == "__main__":
    main()
