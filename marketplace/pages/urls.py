from django.urls import path

from marketplace.pages import console, home

urlpatterns = [
    path("", home.home, name="home"),
    path("labs/<id:lab_id>/settings/", console.lab_settings, name="console-lab-settings"),
]
