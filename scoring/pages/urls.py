from django.urls import path

from scoring.pages import desk, expert, invitations

urlpatterns = [
    path(
        "projects/<id:project_id>/invitations/",
        invitations.project_invitations,
        name="console-project-invitations",
    ),
    path("expert/quality/", expert.expert_quality, name="expert-quality"),
    path(
        "expert/quality-stops/<id:stop_id>/appeal/",
        expert.expert_quality_stop_appeal,
        name="expert-quality-stop-appeal",
    ),
    path("desk/flags/", desk.desk_flags, name="desk-flags"),
    path("desk/quality-stops/", desk.desk_quality_stops, name="desk-quality-stops"),
    path(
        "desk/quality-stops/<id:stop_id>/decide/",
        desk.desk_quality_stop_decide,
        name="desk-quality-stop-decide",
    ),
]
