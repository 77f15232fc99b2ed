"""Who is logged in to the web app and what they may do: the Gradio login (the users file's
accounts, failed logins rate-limited per name and per client address), the logged-in user
of a request, and the editor check the document handlers make on the server.

Without a users file nobody is a user (``user`` is None), everyone may edit, and the login
is today's single shared ``login_user`` at most.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import gradio as gr
from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from chatbot.accounts import EDITOR, User, Users, UsersFile
from chatbot.login_limit import LoginLimiter
from chatbot.web.config import WebSettings
from chatbot.web.ui import md_escape

logger = logging.getLogger(__name__)

CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("docqa_client_address", default=None)
LOGIN_MESSAGE = (
    "docqa: log in to ask the documents. After {n} failed logins for a name or from an "
    "address, logins for it are refused for up to {s} s."
)


class ClientAddress:
    """ASGI middleware: the client's address of each HTTP request, in ``CLIENT_ADDRESS``
    (Gradio's auth callable sees only the name and password)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = CLIENT_ADDRESS.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT_ADDRESS.reset(token)


class LoginRefused(Exception):
    """A login refused without checking the password: too many recent failures."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = math.ceil(wait_s)
        super().__init__(f"too many failed logins, try again in {self.wait_s} s")


class Access:
    """The accounts of the web app (or none) and the checks made with them."""

    def __init__(
        self,
        users_file: UsersFile | None = None,
        limiter: LoginLimiter | None = None,
        shared_login: tuple[str, str] | None = None,
    ) -> None:
        self.users_file = users_file
        self.limiter = limiter or LoginLimiter()
        self.shared_login = shared_login

    @classmethod
    def from_settings(cls, settings: WebSettings) -> Access:
        """Read the users file (an ``AccountsError`` names a bad one) when one is set."""
        users = UsersFile(settings.users_file) if settings.users_file else None
        limiter = LoginLimiter(settings.login_max_failures, settings.login_window_s)
        shared = (settings.login_user, settings.login_password) if settings.login_user else None
        return cls(users, limiter, shared)

    @property
    def enabled(self) -> bool:
        """Whether there are accounts (a users file)."""
        return self.users_file is not None

    def users(self) -> Users | None:
        return self.users_file.users() if self.users_file is not None else None

    # ---- logging in
    def auth(self) -> tuple[str, str] | Callable[[str, str], Awaitable[bool]] | None:
        """Gradio's ``auth=``: the accounts' check, the shared login, or None."""
        return self.login if self.enabled else self.shared_login

    def auth_message(self) -> str | None:
        if self.enabled:
            return LOGIN_MESSAGE.format(
                n=self.limiter.max_failures, s=math.ceil(self.limiter.window_s)
            )
        return "docqa: log in to ask the documents" if self.shared_login else None

    def check_login(self, name: str, password: str, address: str | None) -> User | None:
        """The user when the password is right and no limit holds; None when wrong (counted
        and logged with the name and address, never the password); ``LoginRefused`` while
        the name or the address has too many recent failures."""
        wait = self.limiter.retry_after(name, address)
        if wait > 0:
            logger.warning(
                "login for %r from %s refused: too many failed logins (%d s left)",
                name,
                address,
                math.ceil(wait),
            )
            raise LoginRefused(wait)
        users = self.users()
        user = users.authenticate(name, password) if users is not None else None
        if user is None:
            self.limiter.failed(name, address)
            logger.warning("failed login for %r from %s", name, address)
            return None
        logger.info("%s (%s) logged in from %s", user.name, user.role, address)
        return user

    async def login(self, name: str, password: str) -> bool:
        """Gradio's auth callable. A refusal for too many failures is Gradio's 400 (the
        login page then says the credentials are wrong) with our reason as the detail."""
        address = CLIENT_ADDRESS.get()
        try:
            user = await run_in_threadpool(self.check_login, name, password, address)
        except LoginRefused as exc:
            raise HTTPException(
                status_code=400, detail=str(exc), headers={"Retry-After": str(exc.wait_s)}
            ) from None
        return user is not None

    # ---- the logged-in user
    def user(self, request: gr.Request | None) -> str | None:
        """The logged-in user's name with accounts on; None without accounts."""
        if not self.enabled:
            return None
        return getattr(request, "username", None) or ""

    def role(self, request: gr.Request | None) -> str | None:
        """The logged-in user's role: everyone edits without accounts; None for nobody."""
        if not self.enabled:
            return EDITOR
        users = self.users()
        user = users.get(self.user(request)) if users is not None else None
        return user.role if user is not None else None

    def refusal(self, request: gr.Request | None) -> str | None:
        """Why this request may not change the documents; None when it may."""
        role = self.role(request)
        if role == EDITOR:
            return None
        name = self.user(request) or "nobody logged in"
        logger.warning("document change refused for %s (role %s)", name, role)
        return (
            "Refused: only editors can change documents or collections; "
            f"{name} is {'a ' + role if role else 'not a user'}."
        )

    def whoami(self, request: gr.Request | None) -> str:
        """The page's line naming the logged-in user, their role and a logout link."""
        if not self.enabled:
            return ""
        name, role = self.user(request), self.role(request)
        who = md_escape(name or "", False)
        return f"Logged in as **{who}** ({role or 'no role'}) · [Log out](logout)"

    def page_view(self, request: gr.Request) -> tuple[str, Any, Any]:
        """On page load: (who is logged in, the editing controls shown to editors only,
        the note shown to readers instead)."""
        editor = self.role(request) == EDITOR
        return (
            self.whoami(request),
            gr.update(visible=editor),
            gr.update(visible=not editor),
        )
