from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Accounts and labs"

    def ready(self) -> None:
        # At ready(): the registries (checks, path converters, schema extensions) need loaded apps.
        from marketplace import checks, converters, schema  # noqa: F401, PLC0415  (registers checks and schemes)

        # Before any urls.py is loaded: every integer id in a path uses `<id:...>`.
        converters.register()
