"""Optional parts of fmnist and the packages they need.

A plain `pip install fmnist` trains, compares, evaluates and predicts; the web app and the ONNX
export are extras (`pip install 'fmnist[serve]'`, `'fmnist[export]'`), so their packages are
checked before the command that needs them imports anything, and a missing one is one clear
line naming the extra to install instead of an ImportError traceback.
"""

from __future__ import annotations

from importlib.util import find_spec

from fmnist.errors import FmnistError

#: Each extra and the top-level modules the code imports from it.
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "starlette", "anyio", "uvicorn", "multipart"),
    "export": ("onnx", "onnxruntime", "skl2onnx"),
}


def require_extra(extra: str, what: str) -> None:
    """Raise a user error unless every package of `extra` is importable; `what` names the
    feature in the message (e.g. "'fmnist serve'")."""
    missing = [module for module in EXTRAS[extra] if find_spec(module) is None]
    if missing:
        raise FmnistError(f"{what} needs the optional packages of fmnist[{extra}] "
                          f"({', '.join(missing)} not installed): "
                          f"pip install 'fmnist[{extra}]'")
