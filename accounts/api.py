"""API authentication with personal access tokens (``Authorization: Bearer``)."""

from django.http import HttpRequest
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from accounts.models import User
from accounts.services import token_authenticate


class PersonalTokenAuth(HttpBearer):
    """An artist's personal access token (created on /settings/tokens/).

    No CSRF check: a browser never attaches an ``Authorization`` header on
    its own, so a forged cross-site request cannot carry the token. Without
    the header this returns None and the next authenticator (the session)
    is tried; a bearer token that is unknown or revoked is a 401 at once
    rather than a silent fall back to the session cookie.
    """

    def authenticate(self, request: HttpRequest, token: str) -> User:
        user = token_authenticate(plaintext=token.strip())
        if user is None:
            raise AuthenticationError(
                message="The access token is unknown or has been revoked."
            )
        return user


personal_token_auth = PersonalTokenAuth()
