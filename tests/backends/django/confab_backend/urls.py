"""Routes. Every API answer is JSON, errors included (see confab_api.errors)."""

from django.conf import settings
from django.urls import path

from confab_api import views_auth, views_chat, views_chatkit, views_chatsdk, views_test

urlpatterns = [
    # Seed 004: the first-party login and SimpleJWT's refresh and blacklist views.
    path("api/authuser/login/", views_auth.LoginView.as_view()),
    path("api/token/refresh/", views_auth.CountedTokenRefreshView.as_view()),
    path("api/token/blacklist/", views_auth.CountedTokenBlacklistView.as_view()),
    # Connection tokens for the chat server and the documents it verifies them with.
    path("api/chat/token", views_chat.ChatTokenView.as_view()),
    path(".well-known/openid-configuration", views_chat.discovery),
    path(".well-known/jwks.json", views_chat.jwks),
    # Seed 003: a ChatSDK-shaped token service.
    path("api/chatsdk/token", views_chatsdk.TokenView.as_view()),
    path("api/chatsdk/refresh", views_chatsdk.RefreshView.as_view()),
    path("api/chatsdk/logout", views_chatsdk.LogoutView.as_view()),
    # Seed 002: ChatKit-shaped sessions.
    path("api/chatkit/session", views_chatkit.SessionView.as_view()),
    path("api/chatkit/refresh", views_chatkit.RefreshView.as_view()),
]

if settings.TEST_ROUTES:
    urlpatterns += [
        path("__test/stats", views_test.stats_view),
        path("__test/reset", views_test.reset),
        path("__test/live-refresh-tokens", views_test.live_refresh_tokens),
    ]

handler400 = "confab_api.errors.bad_request"
handler404 = "confab_api.errors.not_found"
handler500 = "confab_api.errors.server_error"
