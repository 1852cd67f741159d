"""Subscription feeds: the treatment store, the feed server, the patient's page and its QR code.

`store` keeps treatments and their secret links (SQLite or PostgreSQL); `app` is the ASGI app that
serves each treatment's .ics feed and page; `landing` renders the page; `qr` draws the link. The
server's libraries (uvicorn, starlette, segno, psycopg) are imported only when a feed command runs.
"""
