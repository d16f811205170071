"""`fmnist serve`: a FastAPI app that scores photos and pixel arrays with one saved model."""

from fmnist.serve.app import create_app

__all__ = ["create_app"]
