from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Accounts and labs"

    def ready(self) -> None:
        from marketplace import checks, schema  # noqa: F401  (registers checks and schemes)
