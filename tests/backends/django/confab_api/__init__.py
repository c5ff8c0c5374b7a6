"""The test backend's API: login, SimpleJWT refresh/blacklist, chat connection tokens, the
ChatSDK- and ChatKit-shaped token services, and the test routes (see ../README.md)."""
