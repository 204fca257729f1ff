from django.urls import path

from contributors import api

urlpatterns = [
    path("skills/", api.SkillListView.as_view(), name="skill-list"),
    path("me/profile/", api.MyProfileView.as_view(), name="me-profile"),
    path("me/certifications/", api.MyCertificationsView.as_view(), name="me-certifications"),
    path("applications/", api.ApplicationListCreateView.as_view(), name="application-list"),
    path("exams/", api.ExamListView.as_view(), name="exam-list"),
    path("exams/<id:exam_id>/attempts/", api.ExamAttemptStartView.as_view(), name="exam-start"),
    path("attempts/<id:attempt_id>/", api.ExamAttemptDetailView.as_view(), name="attempt-detail"),
    path(
        "attempts/<id:attempt_id>/submit/",
        api.ExamAttemptSubmitView.as_view(),
        name="attempt-submit",
    ),
    path("admin/applications/", api.AdminApplicationListView.as_view(), name="admin-applications"),
    path(
        "admin/applications/<id:application_id>/approve/",
        api.AdminApplicationApproveView.as_view(),
        name="admin-application-approve",
    ),
    path(
        "admin/applications/<id:application_id>/reject/",
        api.AdminApplicationRejectView.as_view(),
        name="admin-application-reject",
    ),
    path(
        "admin/certifications/",
        api.AdminCertificationCreateView.as_view(),
        name="admin-certifications",
    ),
    path(
        "admin/certifications/<id:certification_id>/revoke/",
        api.AdminCertificationRevokeView.as_view(),
        name="admin-certification-revoke",
    ),
    path(
        "admin/experts/<id:user_id>/suspend/",
        api.AdminExpertSuspendView.as_view(),
        name="admin-expert-suspend",
    ),
    path(
        "admin/experts/<id:user_id>/reinstate/",
        api.AdminExpertReinstateView.as_view(),
        name="admin-expert-reinstate",
    ),
]
