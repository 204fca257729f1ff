from django.urls import path

from contributors.pages import desk, expert

urlpatterns = [
    path("expert/", expert.expert_home, name="expert-home"),
    path("expert/profile/", expert.expert_profile, name="expert-profile"),
    path("expert/applications/", expert.expert_applications, name="expert-applications"),
    path("expert/exams/", expert.expert_exams, name="expert-exams"),
    path("expert/exams/<id:exam_id>/start/", expert.exam_start, name="expert-exam-start"),
    path("expert/attempts/<id:attempt_id>/", expert.exam_attempt, name="expert-attempt"),
    path("desk/", desk.desk_home, name="desk-home"),
    path("desk/applications/", desk.desk_applications, name="desk-applications"),
    path(
        "desk/applications/<id:application_id>/decide/",
        desk.desk_application_decide,
        name="desk-application-decide",
    ),
    path("desk/certifications/", desk.desk_certifications, name="desk-certifications"),
    path(
        "desk/certifications/<id:certification_id>/revoke/",
        desk.desk_certification_revoke,
        name="desk-certification-revoke",
    ),
    path("desk/suspensions/", desk.desk_suspensions, name="desk-suspensions"),
    path("desk/suspensions/change/", desk.desk_expert_suspension, name="desk-expert-suspension"),
    path("desk/held/<id:user_id>/", desk.desk_held_money, name="desk-held-money"),
]
