"""`aftercal serve`: every stored treatment's feed and landing page over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from aftercal import feeds
from aftercal.cli.command import sub_app
from aftercal.cli.common import current_config
from aftercal.cli.options import DbOpt

app = sub_app()


@app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8080,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="AFTERCAL_BASE_URL",
            help="Public address behind a reverse proxy, used in the landing page's links (default: http://HOST:PORT).",
        ),
    ] = None,
    cancelled_days: Annotated[
        int, typer.Option("--cancelled-days", min=0, help="Days a cancelled treatment's feed shows cancelled events.")
    ] = 30,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "info",
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            envvar="AFTERCAL_MAX_CONNECTIONS",
            min=1,
            help="Open connections at most (lowered to fit `ulimit -n`); beyond it the connections that wait "
            "longest for a request are closed.",
        ),
    ] = feeds.DEFAULT_MAX_CONNECTIONS,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            envvar="AFTERCAL_HEADER_TIMEOUT",
            min=0.1,
            help="Seconds a connection has to send a complete request's headers (after connecting or after "
            "its previous response) before it is closed.",
        ),
    ] = feeds.DEFAULT_HEADER_TIMEOUT,
    db_timeout: Annotated[
        float,
        typer.Option(
            "--db-timeout",
            envvar="AFTERCAL_DB_TIMEOUT",
            min=2.0,
            help="Seconds one PostgreSQL call may take (waiting for a connection, connecting, the query) "
            "before the request gets a 503.",
        ),
    ] = feeds.DEFAULT_DB_TIMEOUT,
) -> None:
    """Serve every stored treatment's subscription feed and landing page (uvicorn, until Ctrl-C).

    Example:

        aftercal serve --db clinic.db --host 127.0.0.1 --port 8080 --base-url https://care.example
    """

    def listening(address: str, public: str) -> None:
        typer.echo(f"Serving feeds on {address} (links: {public})", err=True)

    def empty(store: str) -> None:
        typer.echo(
            f"aftercal: warning: the treatment store {store} holds no treatment yet: every feed link answers 404 "
            "until one is added (`aftercal treatments add`); check --db if you expected treatments here",
            err=True,
        )

    feeds.serve_feeds(
        db, host=host, port=port, base_url=base_url, cancelled_days=cancelled_days, log_level=log_level,
        max_connections=max_connections, header_timeout=header_timeout, db_timeout=db_timeout,
        on_listening=listening, on_empty=empty, secret=current_config().secret(),
        google_web=current_config().google_web_client(),
    )  # fmt: skip
