"""The whole hub, launched once per session, and gradio_client connections to it."""

from __future__ import annotations

import pytest

from tests.serving import BackgroundServer


@pytest.fixture(scope="session")
def hub_server():
    from hub.app import create_app

    with BackgroundServer(create_app()) as server:
        yield server


@pytest.fixture(scope="session")
def hub_url(hub_server) -> str:
    return hub_server.url


@pytest.fixture(scope="session")
def client(hub_url):
    from gradio_client import Client

    return Client(hub_url, verbose=False)


@pytest.fixture(scope="session")
def space_client(hub_url):
    """A client for one space on its own URL: space_client("patch_explorer")."""
    from gradio_client import Client

    clients: dict = {}

    def connect(slug: str) -> Client:
        if slug not in clients:
            clients[slug] = Client(f"{hub_url}{slug}/", verbose=False)
        return clients[slug]

    return connect
