"""The Typer application object that every command module adds its commands to."""

import typer

app = typer.Typer(
    name="fmnist",
    help="Fashion-MNIST apparel classifier lab: data, models, comparison, prediction, web app.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
