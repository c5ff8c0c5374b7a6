from django.apps import AppConfig


class ConfabApiConfig(AppConfig):
    name = "confab_api"
    verbose_name = "Confab test backend API"
