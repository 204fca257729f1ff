from django.urls import path

from projects.api import capabilities as capabilities_api
from projects.api import evolution as evolution_api
from projects.api import feed as feed_api
from projects.api import invitations as invitations_api
from projects.api import projects as api
from projects.api import work as work_api

urlpatterns = [
    path("projects/", api.ProjectListCreateView.as_view(), name="project-list"),
    path("projects/<id:project_id>/", api.ProjectDetailView.as_view(), name="project-detail"),
    path(
        "projects/<id:project_id>/publish/",
        api.ProjectPublishView.as_view(),
        name="project-publish",
    ),
    path("projects/<id:project_id>/pause/", api.ProjectPauseView.as_view(), name="project-pause"),
    path("projects/<id:project_id>/close/", api.ProjectCloseView.as_view(), name="project-close"),
    path(
        "projects/<id:project_id>/rubric-versions/",
        api.RubricVersionsView.as_view(),
        name="project-rubric-versions",
    ),
    path("projects/<id:project_id>/feed/", feed_api.ProjectFeedView.as_view(), name="project-feed"),
    path(
        "projects/<id:project_id>/feed/calibration/",
        feed_api.FeedCalibrationView.as_view(),
        name="project-feed-calibration",
    ),
    path(
        "projects/<id:project_id>/exports/",
        api.ProjectExportJobsView.as_view(),
        name="project-export-jobs",
    ),
    path("exports/<id:job_id>/", api.ExportJobDetailView.as_view(), name="export-job"),
    path(
        "exports/<id:job_id>/download/",
        api.ExportJobDownloadView.as_view(),
        name="export-job-download",
    ),
    path(
        "projects/<id:project_id>/bad-cases/",
        evolution_api.BadCasesView.as_view(),
        name="project-bad-cases",
    ),
    path(
        "projects/<id:project_id>/bad-cases/promote-dimension/",
        evolution_api.PromoteDimensionView.as_view(),
        name="project-promote-dimension",
    ),
    path(
        "projects/<id:project_id>/bad-cases/promote-gold/",
        evolution_api.PromoteGoldView.as_view(),
        name="project-promote-gold",
    ),
    path(
        "projects/<id:project_id>/relabel-batches/",
        evolution_api.RelabelBatchesView.as_view(),
        name="project-relabel-batches",
    ),
    path(
        "relabel-batches/<id:batch_id>/",
        evolution_api.RelabelBatchDetailView.as_view(),
        name="relabel-batch",
    ),
    path(
        "relabel-batches/<id:batch_id>/trend/",
        evolution_api.RelabelBatchTrendView.as_view(),
        name="relabel-batch-trend",
    ),
    path(
        "projects/<id:project_id>/trends/",
        evolution_api.DimensionTrendsView.as_view(),
        name="project-trends",
    ),
    path(
        "projects/<id:project_id>/items/import/",
        api.ItemsImportView.as_view(),
        name="project-items-import",
    ),
    path(
        "projects/<id:project_id>/gold/import/",
        api.GoldImportView.as_view(),
        name="project-gold-import",
    ),
    path(
        "capabilities/",
        capabilities_api.CapabilityListCreateView.as_view(),
        name="capability-list",
    ),
    path(
        "capabilities/<id:capability_id>/",
        capabilities_api.CapabilityDetailView.as_view(),
        name="capability-detail",
    ),
    path(
        "capabilities/<id:capability_id>/publish/",
        capabilities_api.CapabilityPublishView.as_view(),
        name="capability-publish",
    ),
    path("me/invitations/", invitations_api.MyInvitationsView.as_view(), name="me-invitations"),
    path(
        "me/invitations/<id:invitation_id>/accept/",
        invitations_api.MyInvitationAcceptView.as_view(),
        name="me-invitation-accept",
    ),
    path("tasks/next/", work_api.TaskNextView.as_view(), name="task-next"),
    path("reviews/next/", work_api.ReviewNextView.as_view(), name="review-next"),
    path(
        "reviews/<id:review_id>/decide/", work_api.ReviewDecideView.as_view(), name="review-decide"
    ),
    path(
        "assignments/<uuid:assignment_id>/submit/",
        work_api.AssignmentSubmitView.as_view(),
        name="assignment-submit",
    ),
    path(
        "assignments/<uuid:assignment_id>/release/",
        work_api.AssignmentReleaseView.as_view(),
        name="assignment-release",
    ),
    path("projects/<id:project_id>/stats/", api.ProjectStatsView.as_view(), name="project-stats"),
    path(
        "projects/<id:project_id>/export/", api.ProjectExportView.as_view(), name="project-export"
    ),
    path(
        "projects/<id:project_id>/export/manifest/",
        api.ProjectExportManifestView.as_view(),
        name="project-export-manifest",
    ),
]
