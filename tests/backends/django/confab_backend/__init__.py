"""The Django project of Confab's test backend (see ../README.md)."""
