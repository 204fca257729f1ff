"""Gray-zone calibration: the audit sample's error rate with its Wilson interval and the
recommended gray zone, checked against a computation by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects import feed
from projects.models import FeedEvent, Project
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_project, make_submission
from tests.projects.openapi_shapes import assert_matches

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
Z = 1.959963984540054

# confidence -> the preferences experts gave ("b": the model's output, the first response,
# was worse). 0.2 is split one-one: a disagreement is not a confirmation, so it counts wrong.
AUDITS = {
    0.1: ["a"],
    0.2: ["b", "a"],
    0.3: ["a", "a", "b"],
    0.85: ["b"],
    0.9: ["a"],
    0.95: ["a", "tie"],
    0.99: ["a"],
    0.97: [],  # not labelled yet
}


def wilson(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return round(max(centre - half, 0), 4), round(min(centre + half, 1), 4)


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return feed_with_audits(lab, lab_owner)


def feed_with_audits(lab: Lab, lab_owner: User) -> Project:
    """A project whose feed audited every auto-accepted event of AUDITS, labelled as given."""
    project = make_project(lab, lab_owner)
    project.feed_gray_low, project.feed_gray_high, project.feed_audit_rate = 0.4, 0.8, 1.0
    project.save()
    events = [
        {
            "external_id": f"c-{confidence}",
            "prompt": "Can I stop my statin?",
            "responses": ["Ask your cardiologist.", "Sure."],
            "model_confidence": confidence,
        }
        for confidence in [*AUDITS, 0.5]
    ]
    feed.feed_accept(project=project, events=events)
    feed.feed_route(project_id=project.pk)
    experts = [UserFactory() for _ in range(3)]
    for confidence, preferences in AUDITS.items():
        item = FeedEvent.objects.get(external_id=f"c-{confidence}").item
        for expert, preference in zip(experts, preferences, strict=False):
            make_submission(item, expert, {"preference": preference})
    return project


def test_the_error_rate_and_the_recommended_gray_zone_match_a_hand_computation(
    project: Project, client_for: Client, lab_owner: User
) -> None:
    url = f"/api/v1/projects/{project.pk}/feed/calibration/"
    owner = client_for(lab_owner)
    body = owner.get(url).json()
    # Judged: 0.1 right, 0.2 wrong (1 of 2), 0.3 right (1 of 3), 0.85 wrong, 0.9, 0.95 (a tie
    # is not wrong), 0.99 right: 2 wrong of 7. 0.97 waits for labels; 0.5 was in the gray zone.
    assert (body["judged"], body["pending"], body["audited"], body["auto_accepted"]) == (7, 1, 8, 8)
    low, high = wilson(2, 7)
    assert body["error_rate"] == {
        "rate": round(2 / 7, 4),
        "n": 7,
        "count": 2,
        "low": low,
        "high": high,
        "method": "wilson",
    }
    assert body["by_side"]["below"]["count"] == 1 and body["by_side"]["below"]["n"] == 3
    assert body["by_side"]["above"]["count"] == 1 and body["by_side"]["above"]["n"] == 4
    # At the default 5% target no zone holds with 7 audits: 0 errors in n gives an upper bound
    # of z^2 / (n + z^2), at most 0.05 from n = 73.
    assert body["target_error_rate"] == 0.05 and body["holds_target"] is False
    assert body["recommendation"] is None and body["minimum_audited_for_target"] == 73

    assert_matches("Calibration", body)
    body = owner.patch(url, {"target_error_rate": 0.5}, format="json").json()
    assert_matches("Calibration", body)
    project.refresh_from_db()
    assert project.feed_target_error_rate == 0.5
    # Below the zone, low' = 0.2 keeps only 0.1 (right); above, high' = 0.85 keeps 0.9, 0.95
    # and 0.99 (right): 0 wrong of 4, upper bound z^2 / (4 + z^2) = 0.49 <= 0.5. Keeping five
    # or more always keeps a wrong one: 1 of 5 has an upper bound of 0.62.
    assert Z * Z / (4 + Z * Z) <= 0.5 < wilson(1, 5)[1]
    assert body["recommendation"] == {
        "gray_zone": [0.2, 0.85],
        "changed": True,
        "error_rate": {
            "rate": 0.0,
            "n": 4,
            "count": 0,
            "low": 0.0,
            "high": wilson(0, 4)[1],
            "method": "wilson",
        },
        "auto_accepted_share": round(4 / 7, 4),
    }
    assert body["holds_target"] is False  # the current zone's upper bound is 0.64


def test_hostile_targets_are_refused_and_write_nothing(
    project: Project, client_for: Client, lab_viewer: User, lab_owner: User, other_lab_owner: User
) -> None:
    url = f"/api/v1/projects/{project.pk}/feed/calibration/"
    owner = client_for(lab_owner)
    for target in [0, 1, 1.5, -0.1, "x", None, float("nan")]:
        response = owner.patch(
            url, f'{{"target_error_rate": {target}}}', content_type="application/json"
        )
        assert response.status_code == 400, (target, response.content)
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert owner.patch(url, {}, format="json").status_code == 400
    viewer = client_for(lab_viewer)
    assert viewer.get(url).status_code == 200
    assert viewer.patch(url, {"target_error_rate": 0.1}, format="json").status_code == 403
    assert client_for(other_lab_owner).get(url).status_code == 404
    project.refresh_from_db()
    assert project.feed_target_error_rate == 0.05


@given(
    judged=st.lists(
        st.tuples(st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.85, 0.9, 0.95, 0.99]), st.booleans()),
        max_size=40,
    ),
    target=st.sampled_from([0.05, 0.2, 0.5]),
)
@settings(max_examples=200, deadline=None)
def test_the_recommended_zone_holds_the_target_and_no_wider_zone_keeps_more(
    judged: list[tuple[float, bool]], target: float
) -> None:
    from projects.calibration import recommend_gray_zone

    low, high = 0.4, 0.8
    found = recommend_gray_zone(judged=judged, low=low, high=high, target=target)

    def kept(new_low: float, new_high: float) -> list[bool]:
        return [wrong for c, wrong in judged if c < new_low or c > new_high]

    def holds(rows: list[bool]) -> bool:
        return bool(rows) and wilson(sum(rows), len(rows))[1] <= target + 1e-4

    best = max(
        (
            len(kept(a, b))
            for a in [low, *(c for c, _ in judged if c < low)]
            for b in [high, *(c for c, _ in judged if c > high)]
            if holds(kept(a, b))
        ),
        default=None,
    )
    if found is None:
        assert best is None
        return
    new_low, new_high = found["gray_zone"]
    assert new_low <= low and new_high >= high
    rows = kept(new_low, new_high)
    assert holds(rows) and len(rows) == best == found["error_rate"]["n"]
