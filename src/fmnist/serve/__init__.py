"""`fmnist serve`: a FastAPI app that scores photos and pixel arrays with one saved model.

The web packages are the optional extra fmnist[serve]: without them, importing this package is
one clear error naming the extra (checked before anything imports FastAPI).
"""

from fmnist.extras import require_extra

require_extra("serve", "the web app ('fmnist serve')")

from fmnist.serve.app import create_app  # noqa: E402  (after the check above)

__all__ = ["create_app"]
