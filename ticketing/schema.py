"""OpenAPI extensions: the stateless JWT authentication of the hot endpoints is the same
bearer scheme as the regular one; drf-spectacular needs to be told."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class SimpleJWTStatelessScheme(SimpleJWTScheme):
    target_class = "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"
    name = "jwtStatelessAuth"
    priority = 1
