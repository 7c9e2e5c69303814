"""Runs an AnythingAgent directory model (a folder with main.py, no model.yaml) as an isomodel
worker, with main.py unchanged (docs/seed-004.md).

The gateway synthesises the model's manifest (src/manifest/anything.ts) with this file as its
entry, so isomodel_worker.py loads `AnythingAdapter` below like any other model. In setup it

- registers the modules `app`, `app.models` and `app.models.base`, the last providing
  `AnythingBaseModel`, so `from app.models.base import AnythingBaseModel` works as written;
- imports `<model dir>/main.py` (its folder first on sys.path, for its own helper modules) and
  instantiates the one class there that derives from AnythingBaseModel;

and for each conversation (a chat item's `input` is `{"messages": [{"role", "content"}]}`) it
awaits `on_chat_start()`, drives the async generator `on_chat_messages(messages)` (each yielded
text is a stream chunk `{"text": ...}`), then awaits `on_chat_end()`; the joined text is the
final output `{"text": ...}`. A stream the gateway cancels (the client went away) closes the
generator and calls `on_chat_stop()` before `on_chat_end()`.

`self.config` is config.yaml as the gateway parsed it (YAML 1.1, as PyYAML reads it; handed over
as JSON in ISOMODEL_ANYTHING_CONFIG, so no YAML library is needed here). Standard library only.
"""
from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import sys
import traceback
import types
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from isomodel_worker import Model, ModelError, item_error

CONFIG_VAR = "ISOMODEL_ANYTHING_CONFIG"
PYTHON_VERSION_VAR = "ISOMODEL_ANYTHING_PYTHON_VERSION"
MAIN_FILE = "main.py"


def check_python_version() -> None:
    """config.yaml's isolation.python_version ("3.10", "3.10.12"): the interpreter must be that one."""
    wanted = os.environ.get(PYTHON_VERSION_VAR)
    if not wanted:
        return
    parts = wanted.split(".")
    have = [str(n) for n in sys.version_info[:len(parts)]]
    if have != parts:
        raise ModelError("MODEL_NOT_LOADED", "config.yaml asks for Python %s (isolation.python_version); "
                         "this interpreter, %s, is Python %s" % (wanted, sys.executable, sys.version.split()[0]))


def _env_config() -> Dict[str, Any]:
    """config.yaml, parsed by the gateway; {} when the folder has none."""
    raw = os.environb.get(CONFIG_VAR.encode()) if hasattr(os, "environb") else None
    if not raw:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ModelError("MODEL_NOT_LOADED", "%s is not valid JSON: %s" % (CONFIG_VAR, exc))
    return value if isinstance(value, dict) else {}


def _env_model_dir() -> Optional[Path]:
    d = os.environ.get("ISOMODEL_MODEL_DIR")
    return Path(d) if d else None


class AnythingBaseModel(ABC):
    """
    The base class of AnythingAgent models: implement the async generator on_chat_messages.
    config (config.yaml), model_dir, data_dir and a context dict are provided.
    """

    def __init__(self):
        self.context: Dict[str, Any] = {}
        self.config: Dict[str, Any] = _env_config()  # Model configuration (config.yaml)
        self._model_dir: Optional[Path] = _env_model_dir()

    @property
    def model_dir(self) -> Optional[Path]:
        """The model's folder."""
        return getattr(self, "_model_dir", None) or _env_model_dir()

    @model_dir.setter
    def model_dir(self, path: Path) -> None:
        self._model_dir = Path(path)

    @property
    def data_dir(self) -> Optional[Path]:
        """The model's data folder (`data/` in its folder)."""
        return self.model_dir / "data" if self.model_dir else None

    @abstractmethod
    async def on_chat_messages(self, messages: List[Dict[str, str]]):
        """
        Handle a conversation and yield the answer in parts (an async generator of str).

        Args:
            messages: the conversation, each message a dict with role and content
        """
        yield ""  # pragma: no cover - abstract

    async def on_chat_start(self) -> None:
        """Hook called before each conversation is handled."""

    async def on_chat_end(self) -> None:
        """Hook called after each conversation, also when it failed or was stopped."""

    async def on_chat_stop(self) -> None:
        """Hook called when a conversation is stopped before its end (the client went away)."""

    async def on_chat_resume(self, thread: str) -> None:
        """Hook of AnythingAgent's chat UI; isomodel never calls it (each request is a whole conversation)."""

    def set_context(self, key: str, value: Any) -> None:
        self.context[key] = value

    def get_context(self, key: str, default: Any = None) -> Any:
        return self.context.get(key, default)

    def clear_context(self) -> None:
        """Forget everything held in the context."""
        self.context.clear()


AnythingBaseModel.__module__ = "app.models.base"


def install_shim() -> None:
    """Makes `app.models.base` importable, providing AnythingBaseModel."""
    parents = []
    for name in ("app", "app.models"):
        mod = types.ModuleType(name, "isomodel's stand-in for AnythingAgent's %s package" % name)
        mod.__path__ = []  # a package: `import app.models.base` walks through it
        sys.modules[name] = mod
        parents.append(mod)
    base = types.ModuleType("app.models.base", "AnythingBaseModel, provided by isomodel (sdk/python/anything_adapter.py)")
    base.AnythingBaseModel = AnythingBaseModel
    sys.modules["app.models.base"] = base
    parents[0].models = parents[1]
    parents[1].base = base


def load_model_class(main_path: str) -> type:
    """Imports main.py (unchanged) and returns its one AnythingBaseModel subclass."""
    spec = importlib.util.spec_from_file_location("main", main_path)
    if spec is None or spec.loader is None:
        raise ModelError("MODEL_NOT_LOADED", "cannot import %s" % main_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    found = [c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, AnythingBaseModel)
             and c is not AnythingBaseModel and c.__module__ == "main"]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise ModelError("MODEL_NOT_LOADED", "main.py must define exactly one class deriving from "
                         "AnythingBaseModel (from app.models.base import AnythingBaseModel); found: %s" % names)
    return found[0]


def _messages(item: Dict[str, Any]) -> List[Dict[str, str]]:
    raw = item.get("input")
    if isinstance(raw, dict):
        raw = raw.get("messages")
    if not isinstance(raw, list):
        raise ModelError("INVALID_REQUEST", "a chat item carries input {messages: [{role, content}]}")
    out = []
    for m in raw:
        msg = {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
        if isinstance(m.get("name"), str):
            msg["name"] = m["name"]
        out.append(msg)
    return out


def _text(piece: Any) -> str:
    if isinstance(piece, str):
        return piece
    if piece is None:
        return ""
    if isinstance(piece, (bytes, bytearray)):
        return bytes(piece).decode("utf-8", "replace")
    raise ModelError("PREDICTION_FAILED", "on_chat_messages yielded a %s; it must yield text (str)"
                     % type(piece).__name__)


class AnythingAdapter(Model):
    """An isomodel Model that runs an AnythingBaseModel from main.py."""

    def setup(self, ctx) -> None:
        main_path = os.path.join(ctx.model_dir, MAIN_FILE)
        if not os.path.isfile(main_path):
            raise ModelError("MODEL_NOT_LOADED", "%s not found" % main_path)
        check_python_version()
        install_shim()
        if ctx.model_dir not in sys.path:
            sys.path.insert(0, ctx.model_dir)  # main.py's own helper modules
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        cls = load_model_class(main_path)
        self.model = cls()
        # A subclass whose __init__ does not call super().__init__() still gets what the base provides.
        if not isinstance(getattr(self.model, "context", None), dict):
            self.model.context = {}
        if not isinstance(getattr(self.model, "config", None), dict):
            self.model.config = _env_config()

    def _hook(self, name: str, *args: Any) -> None:
        result = getattr(self.model, name)(*args)
        if inspect.isawaitable(result):
            self.loop.run_until_complete(result)

    def _pieces(self, result: Any) -> Iterator[str]:
        """What on_chat_messages returned, piece by piece: an async generator (the documented
        form), a coroutine returning the whole text, a generator, or a string."""
        run = self.loop.run_until_complete
        if inspect.isasyncgen(result):
            try:
                while True:
                    try:
                        piece = run(result.__anext__())
                    except StopAsyncIteration:
                        return
                    yield _text(piece)
            finally:
                run(result.aclose())  # runs the model's own finally blocks when stopped early
        elif inspect.isawaitable(result):
            yield _text(run(result))
        elif inspect.isgenerator(result):
            for piece in result:
                yield _text(piece)
        else:
            yield _text(result)

    def chat(self, messages: List[Dict[str, str]]) -> Iterator[str]:
        """One conversation: on_chat_start, the answer's non-empty parts, on_chat_end. Closed
        early (a cancelled stream), it stops the model's generator and calls on_chat_stop too."""
        self._hook("on_chat_start")
        outcome = "stopped"
        pieces = self._pieces(self.model.on_chat_messages(messages))
        try:
            for text in pieces:
                if text:
                    yield text
            outcome = "done"
        except Exception:
            outcome = "failed"
            raise
        finally:
            pieces.close()
            try:
                if outcome == "stopped":
                    self._hook("on_chat_stop")
                self._hook("on_chat_end")
            except Exception as exc:
                if outcome == "done":
                    raise
                # The conversation's own error (or its stop) is what the client hears about.
                print("[anything_adapter] %s in on_chat_%s after a conversation that did not finish: %s"
                      % (type(exc).__name__, "stop/end", exc), file=sys.stderr, flush=True)

    def predict(self, batch: List[Dict[str, Any]], task: str) -> List[Dict[str, Any]]:
        outputs = []
        for item in batch:
            try:
                outputs.append({"text": "".join(self.chat(_messages(item)))})
            except ModelError as exc:
                outputs.append(item_error(exc.code, exc.message))
            except Exception as exc:
                traceback.print_exc()
                outputs.append(item_error("PREDICTION_FAILED", "%s: %s" % (type(exc).__name__, exc)))
        return outputs

    def stream(self, batch: List[Dict[str, Any]], task: str):
        finals = []
        for index, item in enumerate(batch):
            parts = []
            conversation = self.chat(_messages(item))
            try:
                for text in conversation:
                    parts.append(text)
                    yield index, {"text": text}
            finally:
                conversation.close()  # a cancelled stream ends the conversation now, not at GC
            finals.append({"text": "".join(parts)})
        return finals

    def teardown(self) -> None:
        loop = getattr(self, "loop", None)
        if loop is not None and not loop.is_closed():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
