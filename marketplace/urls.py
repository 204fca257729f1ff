from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from marketplace import api, health, webhooks_api

handler400 = "marketplace.http_errors.bad_request"
handler404 = "marketplace.http_errors.page_not_found"
handler500 = "marketplace.http_errors.server_error"

api_v1: list[URLPattern | URLResolver] = [
    path("", include("projects.urls")),
    path("", include("contributors.urls")),
    path("", include("payouts.urls")),
    path("", include("scoring.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("labs/", api.LabListCreateView.as_view(), name="lab-list"),
    path("labs/<id:lab_id>/", api.LabDetailView.as_view(), name="lab-detail"),
    path("labs/<id:lab_id>/members/", api.LabMembersView.as_view(), name="lab-members"),
    path(
        "labs/<id:lab_id>/members/<id:membership_id>/",
        api.LabMemberDetailView.as_view(),
        name="lab-member-detail",
    ),
    path("labs/<id:lab_id>/api-keys/", api.LabApiKeysView.as_view(), name="lab-api-keys"),
    path(
        "labs/<id:lab_id>/webhooks/",
        webhooks_api.WebhookEndpointsView.as_view(),
        name="lab-webhooks",
    ),
    path(
        "labs/<id:lab_id>/webhooks/<id:endpoint_id>/",
        webhooks_api.WebhookEndpointDetailView.as_view(),
        name="lab-webhook-detail",
    ),
    path(
        "labs/<id:lab_id>/webhooks/<id:endpoint_id>/test/",
        webhooks_api.WebhookTestView.as_view(),
        name="lab-webhook-test",
    ),
    path(
        "labs/<id:lab_id>/webhooks/<id:endpoint_id>/deliveries/",
        webhooks_api.WebhookDeliveriesView.as_view(),
        name="lab-webhook-deliveries",
    ),
    path(
        "labs/<id:lab_id>/api-keys/<id:key_id>/",
        api.LabApiKeyDetailView.as_view(),
        name="lab-api-key-detail",
    ),
]

urlpatterns = [
    # Every app's pages: expert pages under /expert/ and /work/, the lab console under /labs/
    # and /projects/, the staff desk under /desk/ (see docs/ARCHITECTURE.md).
    path("", include("marketplace.pages.urls")),
    path("", include("contributors.pages.urls")),
    path("", include("projects.pages.urls")),
    path("", include("scoring.pages.urls")),
    path("", include("payouts.pages.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include(api_v1)),
]
