"""Typer apps whose commands end their help with an `Example:` printed verbatim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand


def split_examples(help_text: str) -> tuple[str, list[str]]:
    """A docstring's prose and the command lines of its `Example:` section (the last section)."""
    head, marker, tail = help_text.partition("\n\nExample:\n")
    if not marker:
        return help_text, []
    return head.rstrip(), [line.strip() for line in tail.splitlines() if line.strip()]


class ExampleCommand(TyperCommand):
    """A command whose docstring's `Example:` section is printed last, verbatim, one command per line.

    Typer's markdown help reflows that section (and drops the `\\` that ends a continued line) and
    rich hard-wraps long lines at the terminal's width: a pasted example then ran without half of
    its options. Here every example is one complete command, written as is: a terminal soft-wraps
    a long one, and copying it gives back one line.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        prose, examples = split_examples(kwargs.get("help") or "")
        if examples:
            kwargs["help"] = prose
        super().__init__(*args, **kwargs)
        self.examples = examples

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's own (vendored) click types
        super().format_help(ctx, formatter)  # with rich, printed at once; the formatter's text follows it
        if self.examples:
            formatter.write("\n Example:\n\n")
            for line in self.examples:
                formatter.write(f"   {line}\n")


_F = TypeVar("_F", bound=Callable[..., Any])


class App(typer.Typer):
    """typer.Typer whose commands print their examples verbatim (see ExampleCommand)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[_F], _F]:
        kwargs.setdefault("cls", ExampleCommand)
        decorator: Callable[[_F], _F] = super().command(*args, **kwargs)
        return decorator


def sub_app(help: str | None = None) -> App:
    """A command group (with `help`), or, without it, commands that the parent adds as its own."""
    if help is None:
        return App(rich_markup_mode="markdown")
    return App(rich_markup_mode="markdown", help=help, no_args_is_help=True)
