"""The projects API, by subdomain: `projects` (labs' project management) and `work` (experts'
tasks)."""

from projects.api.projects import lab_project

__all__ = ["lab_project"]
