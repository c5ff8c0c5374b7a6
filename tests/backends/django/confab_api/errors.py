"""JSON errors. Every error this backend writes itself is `{"detail": "...", "code": "..."}`
(ChatKit-shaped routes: `{"error": "...", ...}`); DRF's own detail-only errors get their `code`
added here. Field-validation errors of SimpleJWT's serializers keep DRF's shape
(`{"refresh": ["This field is required."]}`)."""

from django.http import JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error(status, code, detail, headers=None, **extra):
    """A DRF response `{"detail": detail, "code": code, **extra}`."""
    return Response({"detail": detail, "code": code, **extra}, status=status, headers=headers)


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and "code" not in data:
        data["code"] = getattr(data["detail"], "code", None) or "error"
    return response


def describe(exc):
    """`status code: message` of a DRF exception, for the log (never a token value)."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        message = detail.get("detail", detail)
        code = detail.get("code", "")
    else:
        message = detail if detail is not None else exc
        code = getattr(detail, "code", "")
    status = getattr(exc, "status_code", 500)
    return f"{status} {code}: {message}".replace("\n", " ")


def not_found(request, exception=None):
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def bad_request(request, exception=None):
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


def server_error(request):
    return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
