from django.urls import path

from projects.pages import capabilities, console, dashboard, invitations, loop, review, work

urlpatterns = [
    path("work/", work.work_index, name="work-index"),
    path("expert/invitations/", invitations.expert_invitations, name="expert-invitations"),
    path(
        "expert/invitations/<id:invitation_id>/accept/",
        invitations.expert_invitation_accept,
        name="expert-invitation-accept",
    ),
    path("work/next/", work.work_next, name="work-next"),
    path("work/tasks/<uuid:assignment_id>/", work.work_task, name="work-task"),
    path("work/tasks/<uuid:assignment_id>/release/", work.work_release, name="work-release"),
    path("review/", review.review_index, name="review-index"),
    path("review/next/", review.review_next, name="review-next"),
    path("review/<id:review_id>/", review.review_task, name="review-task"),
    path("labs/", console.console_home, name="console-home"),
    path("labs/<id:lab_id>/", console.console_lab, name="console-lab"),
    path("labs/<id:lab_id>/projects/new/", console.project_new, name="console-project-new"),
    path(
        "labs/<id:lab_id>/capabilities/",
        capabilities.capability_library,
        name="console-capabilities",
    ),
    path(
        "labs/<id:lab_id>/capabilities/save/",
        capabilities.capability_save,
        name="console-capability-save",
    ),
    path(
        "labs/<id:lab_id>/capabilities/<id:capability_id>/publish/",
        capabilities.capability_publish,
        name="console-capability-publish",
    ),
    path(
        "labs/<id:lab_id>/capabilities/<id:capability_id>/new-project/",
        capabilities.capability_new_project,
        name="console-capability-new-project",
    ),
    path("projects/<id:project_id>/", dashboard.project_dashboard, name="console-project"),
    path("projects/<id:project_id>/edit/", console.project_edit, name="console-project-edit"),
    path(
        "projects/<id:project_id>/preview/",
        console.project_preview,
        name="console-project-preview",
    ),
    path("projects/<id:project_id>/import/", console.project_import, name="console-project-import"),
    path("projects/<id:project_id>/fund/", dashboard.project_fund, name="console-project-fund"),
    path("projects/<id:project_id>/status/", console.project_status, name="console-project-status"),
    path(
        "projects/<id:project_id>/score/",
        dashboard.project_scoring_run,
        name="console-project-score",
    ),
    path("projects/<id:project_id>/ai-judge/", dashboard.project_ai_judge, name="console-ai-judge"),
    path(
        "projects/<id:project_id>/feed-rules/",
        console.project_feed_rules,
        name="console-feed-rules",
    ),
    path("projects/<id:project_id>/bad-cases/", loop.bad_cases_page, name="console-bad-cases"),
    path(
        "projects/<id:project_id>/bad-cases/promote-dimension/",
        loop.bad_case_promote_dimension_page,
        name="console-promote-dimension",
    ),
    path(
        "projects/<id:project_id>/bad-cases/promote-gold/",
        loop.bad_case_promote_gold_page,
        name="console-promote-gold",
    ),
    path("relabel-batches/<id:batch_id>/", loop.relabel_batch_page, name="console-relabel-batch"),
    path("projects/<id:project_id>/feed/", loop.feed_page, name="console-feed"),
    path(
        "projects/<id:project_id>/feed/target/", loop.feed_target_page, name="console-feed-target"
    ),
    path("projects/<id:project_id>/exports/", loop.exports_page, name="console-exports"),
    path(
        "projects/<id:project_id>/exports/start/",
        loop.export_job_start_page,
        name="console-export-start",
    ),
]
