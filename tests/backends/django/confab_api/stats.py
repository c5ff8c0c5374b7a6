"""Request counters for the tests (GET /__test/stats). Kept in the memory of the single
gunicorn worker, so every thread counts into the same numbers."""

import threading

FIELDS = (
    "login_attempts",
    "login_ok",
    "login_bad_request",
    "login_invalid_credentials",
    "login_inactive",
    "login_rate_limited",
    "refresh_ok",
    "refresh_refused",
    "blacklist_ok",
    "blacklist_refused",
    "chat_tokens_minted",
    "chat_tokens_refused",
    "chatsdk_tokens",
    "chatsdk_refresh_ok",
    "chatsdk_refresh_refused",
    "chatsdk_reuse_events",
    "chatsdk_logouts",
    "chatkit_sessions",
    "chatkit_refresh_ok",
    "chatkit_refresh_refused",
    "chatkit_rate_limited",
)

_lock = threading.Lock()
_counts = dict.fromkeys(FIELDS, 0)


def incr(name):
    with _lock:
        _counts[name] += 1


def snapshot():
    with _lock:
        return dict(_counts)


def reset():
    with _lock:
        for name in FIELDS:
            _counts[name] = 0
