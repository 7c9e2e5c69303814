"""isomodel Python worker SDK (protocol 1, standard library only, Python 3.9+).

A model author writes one file:

    from isomodel_worker import Model, ModelError

    class MyModel(Model):
        def setup(self, ctx):             # load weights from ctx.model_dir / ctx.data_dir
            ...
        def predict(self, batch, task):   # batch: [{"sequence": str, "options": dict}, ...]
            return [{"length": len(item["sequence"])} for item in batch]

A task of another input type gets ``item["input"]`` instead of ``item["sequence"]`` (text, a JSON
value, named tensors, an image or recording: ``media_bytes(item["input"])``, a conversation
``{"messages": [...]}``; see docs/models.md).

and the runtime starts `python3 isomodel_worker.py /abs/path/model.py`.
The wire format is described in docs/worker-protocol.md.
"""
from __future__ import annotations

import base64
import importlib.util
import inspect
import json
import math
import os
import queue
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

PROTOCOL_VERSION = 1


class ModelError(Exception):
    """Raise from setup/predict/stream to report a specific error code to the gateway."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def media_bytes(value: Dict[str, Any]) -> bytes:
    """The bytes of an image or audio item's input (``item["input"]``: format, media_type,
    width/height or sample_rate/…, and the file as base64 ``data``, already checked by the gateway)."""
    return base64.b64decode(value["data"])


def item_error(code: str, message: str) -> Dict[str, Any]:
    """The output entry for one failed item; the other items of the batch still succeed."""
    return {"error": {"code": code, "message": message}}


@dataclass
class Context:
    """What setup() gets: where the package lives and who this replica is."""

    name: str
    version: str
    model_dir: str
    data_dir: str
    replica_id: str
    env: Dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets

    @classmethod
    def from_env(cls, model_file: str) -> "Context":
        # Defaults keep the worker usable by hand, outside the gateway.
        env = dict(os.environ)
        model_dir = env.get("ISOMODEL_MODEL_DIR") or os.path.dirname(os.path.abspath(model_file))
        return cls(
            name=env.get("ISOMODEL_MODEL_NAME") or os.path.basename(model_dir),
            version=env.get("ISOMODEL_MODEL_VERSION") or "0.0.0",
            model_dir=model_dir,
            data_dir=env.get("ISOMODEL_DATA_DIR") or os.path.join(model_dir, "data"),
            replica_id=env.get("ISOMODEL_REPLICA_ID") or "local-%d" % os.getpid(),
            env=env,
        )


class Model:
    """Base class: subclass it exactly once in the model file."""

    def setup(self, ctx: Context) -> None:
        """Load weights. Runs once, before the worker reports ready."""

    def predict(self, batch: List[Dict[str, Any]], task: str) -> List[Dict[str, Any]]:
        """Return one output dict per item, in order (or item_error(...) for one item)."""
        raise NotImplementedError("%s does not implement predict" % type(self).__name__)

    def stream(self, batch: List[Dict[str, Any]], task: str) -> Iterator[Any]:
        """Optional generator: yield (index, data) chunks, `return` the final outputs."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release resources at shutdown."""


# --- protocol output -------------------------------------------------------------------
# Only this writer may touch the real stdout; fd 1 itself is pointed at stderr (see
# _claim_stdio) so that prints from model code or C extensions cannot corrupt the stream.
_write_lock = threading.Lock()
_protocol_fd = 1


def _write_protocol_line(text: str) -> None:
    """Write one full line to the gateway (raw: tests use it to emit malformed output)."""
    data = memoryview((text + "\n").encode("utf-8"))
    with _write_lock:
        while data:  # os.write may write less than asked on a pipe
            data = data[os.write(_protocol_fd, data):]


def _sanitise(value: Any) -> Any:
    # NaN/Infinity are not JSON; numpy-like values expose tolist().
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _sanitise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitise(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _sanitise(value.tolist())
    return value


def _send(message: Dict[str, Any]) -> None:
    try:  # fast path: plain JSON values
        text = json.dumps(message, allow_nan=False, separators=(",", ":"))
    except (ValueError, TypeError):
        try:
            text = json.dumps(_sanitise(message), allow_nan=False, separators=(",", ":"))
        except (ValueError, TypeError) as exc:
            raise ModelError("PREDICTION_FAILED", "output is not JSON-serialisable: %s" % exc)
    _write_protocol_line(text)


def _log(text: str) -> None:
    print("[isomodel_worker] " + text, file=sys.stderr, flush=True)


def _check_outputs(outputs: Any, count: int) -> List[Dict[str, Any]]:
    if not isinstance(outputs, (list, tuple)) or len(outputs) != count:
        got = "%d outputs" % len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ModelError("PREDICTION_FAILED", "model returned %s for a batch of %d items; "
                         "expected a list with one dict per item" % (got, count))
    for i, out in enumerate(outputs):
        if not isinstance(out, dict):
            raise ModelError("PREDICTION_FAILED", "output %d is a %s, expected a dict"
                             % (i, type(out).__name__))
    return list(outputs)


class _Cancelled(Exception):
    pass


# --- the worker ---------------------------------------------------------------------
class _Worker:
    def __init__(self, model: Model, input_fd: int):
        self.model = model
        self.input_fd = input_fd
        self.inbox: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.lock = threading.Lock()  # guards active/cancelled, shared with the reader thread
        self.active: set = set()  # ids received and not yet answered
        self.cancelled: set = set()
        self.stopping = False
        self.can_stream = type(model).stream is not Model.stream

    # Reader thread: answers pings itself, so a long predict never looks like a hang.
    def read_loop(self) -> None:
        try:
            for line in _iter_lines(self.input_fd):
                if line.strip():
                    self.dispatch(line)
        except Exception:
            traceback.print_exc()
        finally:
            self.inbox.put(None)  # EOF (or a broken pipe) means shutdown

    def dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            _log("ignoring unparseable line from the gateway: %r" % line[:200])
            return
        op = msg.get("op") if isinstance(msg, dict) else None
        if op == "ping":
            _send({"op": "pong", "id": msg.get("id")})
        elif op == "cancel":
            with self.lock:
                if msg.get("id") in self.active:  # late cancels would only leak memory
                    self.cancelled.add(msg.get("id"))
        elif op == "predict" and not self.stopping:
            with self.lock:
                self.active.add(msg.get("id"))
            self.inbox.put(msg)
        elif op == "predict":
            _send({"op": "error", "id": msg.get("id"), "code": "PREDICTION_FAILED",
                   "message": "worker is shutting down"})
        elif op == "shutdown":
            self.stopping = True  # keep reading: pings and cancels still matter
            self.inbox.put(None)
        else:
            _log("ignoring message with unknown op: %r" % line[:200])

    def is_cancelled(self, rid: Any) -> bool:
        with self.lock:
            return rid in self.cancelled

    # Main thread: one request at a time, as the protocol promises.
    def serve(self) -> None:
        while True:
            msg = self.inbox.get()
            if msg is None:
                break
            self.handle(msg)
        try:
            self.model.teardown()
        except Exception:
            traceback.print_exc()

    def handle(self, msg: Dict[str, Any]) -> None:
        rid, task = msg.get("id"), msg.get("task")
        items = msg.get("items")
        try:
            if not isinstance(items, list):
                raise ModelError("INVALID_REQUEST", "predict message has no items list")
            if self.is_cancelled(rid):
                raise _Cancelled()
            if msg.get("stream") and self.can_stream:
                self.run_stream(rid, items, task)
            else:
                outputs = _check_outputs(self.model.predict(items, task), len(items))
                _send({"op": "result", "id": rid, "outputs": outputs})
        except _Cancelled:
            _send({"op": "error", "id": rid, "code": "CANCELLED", "message": "cancelled by the gateway"})
        except ModelError as exc:
            _send({"op": "error", "id": rid, "code": str(exc.code), "message": str(exc.message)})
        except Exception as exc:
            traceback.print_exc()
            _send({"op": "error", "id": rid, "code": "PREDICTION_FAILED",
                   "message": "%s: %s" % (type(exc).__name__, exc)})
        finally:
            with self.lock:
                self.active.discard(rid)
                self.cancelled.discard(rid)

    def run_stream(self, rid: Any, items: list, task: Any) -> None:
        gen = iter(self.model.stream(items, task))
        last: Dict[int, Dict[str, Any]] = {}
        try:
            while True:
                try:
                    pair = next(gen)
                except StopIteration as stop:
                    final = stop.value
                    break
                index, data = _check_chunk(pair, len(items))
                if self.is_cancelled(rid):
                    raise _Cancelled()
                _send({"op": "chunk", "id": rid, "index": index, "data": data})
                last[index] = data
        finally:
            if hasattr(gen, "close"):
                gen.close()  # runs the generator's finally blocks when we stop early
        if final is None:
            final = [last.get(i, {}) for i in range(len(items))]
        _send({"op": "end", "id": rid, "outputs": _check_outputs(final, len(items))})


def _check_chunk(pair: Any, count: int):
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise ModelError("PREDICTION_FAILED", "stream must yield (index, data) pairs, got %r" % (pair,))
    index, data = pair
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
        raise ModelError("PREDICTION_FAILED", "stream yielded index %r for a batch of %d items" % (index, count))
    if not isinstance(data, dict):
        raise ModelError("PREDICTION_FAILED", "stream data must be a dict, got %s" % type(data).__name__)
    return index, data


def _iter_lines(fd: int) -> Iterator[bytes]:
    # Raw os.read: no Python file object whose lock a daemon thread could hold at exit.
    buf = bytearray()
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        buf += chunk
        if b"\n" in chunk:
            *lines, rest = bytes(buf).split(b"\n")
            buf = bytearray(rest)
            yield from lines
    if buf.strip():
        yield bytes(buf)


# --- startup -------------------------------------------------------------------------
def _claim_stdio() -> int:
    """Keep private copies of stdin/stdout for the protocol; model code sees stderr/devnull."""
    global _protocol_fd
    _protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    input_fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # a model reading stdin must not steal protocol messages
    os.close(devnull)
    sys.stdin = open(os.devnull)
    return input_fd


def _load_model_class(path: str) -> type:
    stem = os.path.splitext(os.path.basename(path))[0]
    mod_name = stem if stem not in sys.modules else "_isomodel_entry_" + stem
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelError("MODEL_NOT_LOADED", "cannot import %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses, pickle and friends look the module up
    spec.loader.exec_module(module)
    found = [c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, Model)
             and c is not Model and c.__module__ == mod_name]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise ModelError("MODEL_NOT_LOADED", "%s must define exactly one subclass of "
                         "isomodel_worker.Model (found: %s)" % (path, names))
    if found[0].predict is Model.predict:
        raise ModelError("MODEL_NOT_LOADED", "%s does not implement predict(self, batch, task)"
                         % found[0].__name__)
    return found[0]


def main(argv: List[str]) -> int:
    input_fd = _claim_stdio()
    path = argv[1] if len(argv) > 1 else os.environ.get("ISOMODEL_ENTRY", "")
    path = os.path.abspath(path) if path else ""
    # The model imports its neighbours and `isomodel_worker` itself: the running module
    # must be that module, or `Model` would be a second, unrelated class.
    sys.modules["isomodel_worker"] = sys.modules[__name__]
    for directory in (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(path)):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    sys.dont_write_bytecode = True  # the model directory is read-only by convention
    try:
        if not os.path.isfile(path):
            raise ModelError("MODEL_NOT_LOADED", "model file not found: %r (usage: python3 "
                             "isomodel_worker.py /path/to/model.py)" % path)
        ctx = Context.from_env(path)
        model = _load_model_class(path)()
        model.setup(ctx)
    except Exception as exc:
        # A ModelError is the model's own, explained refusal (weights not mounted, ...): its
        # message travels in the fatal line. Only an unexpected exception needs its traceback.
        if not isinstance(exc, ModelError):
            traceback.print_exc()
        code = exc.code if isinstance(exc, ModelError) else "MODEL_NOT_LOADED"
        message = exc.message if isinstance(exc, ModelError) else "%s: %s" % (type(exc).__name__, exc)
        _send({"op": "fatal", "code": str(code), "message": str(message)})
        return 1
    worker = _Worker(model, input_fd)
    _send({"op": "ready", "protocol": PROTOCOL_VERSION, "pid": os.getpid(),
           "model": {"name": ctx.name, "version": ctx.version},
           "capabilities": {"stream": worker.can_stream}})
    threading.Thread(target=worker.read_loop, name="isomodel-reader", daemon=True).start()
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
