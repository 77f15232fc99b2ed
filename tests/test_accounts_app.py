"""Accounts on the launched app (fake embedding): the login is the users file's and failed
logins are rate-limited over HTTP; a reader's raw calls to the Gradio queue cannot upload,
remove or reingest (an editor's can); each user lists only their own conversations; the
OpenAI endpoint takes a user's API key (and DOCQA_API_KEYS) and refuses a wrong one."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatbot.accounts import Users, add_key, set_user
from chatbot.login_limit import LoginLimiter
from chatbot.web.app import ChatApp
from chatbot.web.config import WebSettings
from tests.conftest import ROOT, serve_accounts_app, write

SEEDS = ROOT / "seeds"
PASSWORDS = {"ann": "orchid lantern 41", "bob": "granite ferry 77", "eve": "copper meadow 13"}
ROLES = {"ann": "editor", "bob": "reader", "eve": "reader"}
SERVICE_KEY = "sk-service-key"


@dataclass
class Served:
    url: str
    app: ChatApp
    demo: Any
    settings: WebSettings
    bob_key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("accounts-app")
    users = Users()
    for name, role in ROLES.items():
        users = set_user(users, name, role, PASSWORDS[name])
    users, bob_key = add_key(users, "bob")
    demo, url, settings, app = serve_accounts_app(base, users, api_keys=SERVICE_KEY)
    try:
        yield Served(url.rstrip("/"), app, demo, settings, bob_key)
    finally:
        demo.close()
        app.close()


def password(name: str) -> str:
    return PASSWORDS[name]


@contextmanager
def logged_in(url: str, name: str) -> Iterator[httpx.Client]:
    """An HTTP client holding ``name``'s login cookie, as the browser does."""
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/login", data={"username": name, "password": password(name)})
        assert response.status_code == 200, response.text
        yield client


def fn_index(served: Served, handler: Any) -> int:
    """The queue's index of the (first) event ``handler`` is wired to."""
    return next(i for i, f in served.demo.fns.items() if f.fn == handler)


def call(
    client: httpx.Client, index: int, data: list[Any], session: str | None = None
) -> dict[str, Any]:
    """Join the Gradio queue as a browser does (in page session ``session``, else a new
    one) and wait for the event's last message."""
    session = session or uuid.uuid4().hex
    joined = client.post(
        "/gradio_api/queue/join",
        json={"data": data, "fn_index": index, "session_hash": session, "event_data": None},
    )
    assert joined.status_code == 200, joined.text
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the queue closed without completing the event")


def test_login_checks_the_users_file_and_limits_failures(served: Served, caplog):
    clock = [0.0]
    served.app.access.limiter = LoginLimiter(5, 300, lambda: clock[0])
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert client.get("/gradio_api/info").status_code == 401  # nothing without a login
        with caplog.at_level(logging.WARNING, logger="chatbot.web.access"):
            for _ in range(5):
                wrong = client.post("/login", data={"username": "eve", "password": "guess1234"})
                assert wrong.status_code == 400
                assert wrong.json()["detail"] == "Incorrect credentials."
        assert caplog.text.count("failed login for 'eve' from 127.0.0.1") == 5
        assert "guess1234" not in caplog.text
        right = {"username": "eve", "password": password("eve")}
        refused = client.post("/login", data=right)
        assert refused.status_code == 400 and refused.headers["retry-after"] == "300"
        assert refused.json()["detail"] == "too many failed logins, try again in 300 s"
        assert not client.cookies
        clock[0] += 300
        assert client.post("/login", data=right).status_code == 200
        assert client.get("/gradio_api/info").status_code == 200


def test_a_reader_cannot_change_the_documents_an_editor_can(served: Served, tmp_path: Path):
    app = served.app
    doc = write(tmp_path / "zorblat.txt", "The Zorblat festival is held every June in Quimper.")

    def upload(client: httpx.Client) -> dict[str, Any]:
        with doc.open("rb") as fh:
            (path,) = client.post("/gradio_api/upload", files={"files": fh}).json()
        files = [{"path": path, "orig_name": doc.name, "meta": {"_type": "gradio.FileData"}}]
        return call(client, fn_index(served, app.upload), [files, "docs"])

    # The document handlers are no API endpoints (only /chat is), yet the queue runs them
    # for the page: the handlers themselves check the role.
    assert list(served.demo.get_api_info()["named_endpoints"]) == ["/chat"]
    refusal = "Refused: only editors can change documents or collections; bob is a reader."
    with logged_in(served.url, "bob") as bob:
        done = upload(bob)
        assert done["success"] and done["output"]["data"][0] == refusal
        assert not served.settings.docs_dir.exists() or not any(served.settings.docs_dir.iterdir())
    with logged_in(served.url, "ann") as ann:
        done = upload(ann)
        assert done["output"]["data"][0].startswith("saved zorblat.txt\n"), done
        assert "done: added 1" in done["output"]["data"][0]
    assert (served.settings.docs_dir / "zorblat.txt").exists()
    with logged_in(served.url, "bob") as bob:
        page = uuid.uuid4().hex  # the page loads the removable documents first
        assert call(bob, fn_index(served, app.documents_view), ["docs"], page)["success"]
        removed = call(bob, fn_index(served, app.remove), ["zorblat.txt", "docs"], page)
        assert removed["output"]["data"][0] == refusal
        reingest = call(bob, fn_index(served, app.reingest), ["docs"])
        assert reingest["output"]["data"][0] == refusal
    assert (served.settings.docs_dir / "zorblat.txt").exists()
    assert "zorblat.txt" in [d.source for d in app.service.documents()]


def test_each_user_lists_only_their_own_conversations(served: Served):
    from gradio_client import Client

    question = "Who told federal prosecutors to seek the death penalty in drug cases?"
    Client(served.url, auth=("ann", password("ann")), verbose=False).predict(
        question, api_name="/chat"
    )
    store = served.app.saved.store
    (mine,) = [c for c in store.list(user="ann") if c.title == question]
    assert store.owner(mine.id) == "ann"
    with logged_in(served.url, "bob") as bob:
        listing = call(bob, fn_index(served, served.app.saved.listing), [None])
        assert listing["output"]["data"][0]["choices"] == []
        # Reopening Ann's conversation by its id: Gradio refuses an id not in Bob's list
        # before the handler (which says "not found" itself: test_accounts), the same way
        # as an id that does not exist.
        opened = call(bob, fn_index(served, served.app.collections.open), [mine.id])
        missing = call(bob, fn_index(served, served.app.collections.open), ["0" * 32])
        assert not opened["success"] and question not in json.dumps(opened)
        assert opened["output"]["error"] == missing["output"]["error"].replace("0" * 32, mine.id)
    with logged_in(served.url, "ann") as ann:
        listing = call(ann, fn_index(served, served.app.saved.listing), [None])
        assert [f"{question} · docs", mine.id] in listing["output"]["data"][0]["choices"]


def openai_client(served: Served, key: str):
    import openai

    return openai.OpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)


def test_the_openai_endpoint_takes_a_users_key_and_refuses_a_wrong_one(served: Served, caplog):
    import openai

    messages = [{"role": "user", "content": "Why has use of the death penalty been declining?"}]
    with caplog.at_level(logging.INFO, logger="chatbot.web.openai_api"):
        response = openai_client(served, served.bob_key).chat.completions.create(
            model=served.settings.chat.index.collection, messages=messages
        )
    assert response.object == "chat.completion" and "citations" in response.model_extra["docqa"]
    assert "chat completion for bob" in caplog.text
    service = openai_client(served, SERVICE_KEY).models.list()
    assert [m.id for m in service.data] == [served.settings.chat.index.collection]
    for key in ("sk-wrong", served.bob_key + "x", password("bob")):
        with pytest.raises(openai.AuthenticationError) as err:
            openai_client(served, key).chat.completions.create(model="docs", messages=messages)
        assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    plain = httpx.post(f"{served.url}/api/answer", json={"question": "Why?"}, timeout=30)
    assert plain.status_code == 401
    keyed = httpx.post(
        f"{served.url}/api/answer",
        json={"question": "Why has use of the death penalty been declining?"},
        headers={"Authorization": f"Bearer {served.bob_key}"},
        timeout=60,
    )
    assert keyed.status_code == 200 and "citations" in keyed.json()
