from django.urls import path

from scoring import api, invitations_api

urlpatterns = [
    path(
        "projects/<id:project_id>/invitations/",
        invitations_api.ProjectInvitationsView.as_view(),
        name="project-invitations",
    ),
    path(
        "capabilities/<id:capability_id>/performance/",
        invitations_api.CapabilityPerformanceView.as_view(),
        name="capability-performance",
    ),
    path(
        "projects/<id:project_id>/scoring-runs/",
        api.ProjectScoringRunsView.as_view(),
        name="project-scoring-runs",
    ),
    path("scoring-runs/<id:run_id>/", api.ScoringRunDetailView.as_view(), name="scoring-run"),
    path(
        "projects/<id:project_id>/contributors/",
        api.ProjectContributorsView.as_view(),
        name="project-contributors",
    ),
    path("me/scores/", api.MyScoresView.as_view(), name="me-scores"),
    path("me/quality-stops/", api.MyQualityStopsView.as_view(), name="me-quality-stops"),
    path(
        "me/quality-stops/<id:stop_id>/appeal/",
        api.MyQualityStopAppealView.as_view(),
        name="me-quality-stop-appeal",
    ),
    path("admin/quality-stops/", api.AdminQualityStopsView.as_view(), name="admin-quality-stops"),
    path(
        "admin/quality-stops/<id:stop_id>/decide/",
        api.AdminQualityStopDecideView.as_view(),
        name="admin-quality-stop-decide",
    ),
    path(
        "projects/<id:project_id>/ai-judge/",
        api.ProjectAiJudgeView.as_view(),
        name="project-ai-judge",
    ),
    path(
        "admin/experts/<id:user_id>/reputation/",
        api.AdminExpertReputationView.as_view(),
        name="admin-expert-reputation",
    ),
    path(
        "labs/<id:lab_id>/contributors/<str:pseudonym>/reputation/",
        api.LabContributorReputationView.as_view(),
        name="lab-contributor-reputation",
    ),
]
