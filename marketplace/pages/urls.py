from django.urls import path

from marketplace.pages import console, home, webhooks

urlpatterns = [
    path("", home.home, name="home"),
    path("labs/<id:lab_id>/settings/", console.lab_settings, name="console-lab-settings"),
    path("labs/<id:lab_id>/webhooks/", webhooks.webhooks_page, name="console-webhooks"),
    path(
        "labs/<id:lab_id>/webhooks/<id:endpoint_id>/",
        webhooks.webhook_endpoint_page,
        name="console-webhook",
    ),
    path(
        "labs/<id:lab_id>/webhooks/<id:endpoint_id>/test/",
        webhooks.webhook_test_page,
        name="console-webhook-test",
    ),
    path(
        "labs/<id:lab_id>/webhooks/<id:endpoint_id>/disable/",
        webhooks.webhook_disable_page,
        name="console-webhook-disable",
    ),
]
