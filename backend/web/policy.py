"""The authorisation policy, in one table. No Flask here (pure data and functions): `ROUTES` is the only place a
route's role is declared; @endpoint (backend/web/api/spec.py) reads it at request time and writes it into the
OpenAPI document (x-role), backend/web/auth.py enforces it, tests/security/ checks every route against it.

Roles are ranked: annotator < reviewer < admin (a higher role can do everything a lower one can).

- annotator: the shared image pool (images, files, annotations, revisions, reviews of an image, pre-fill, assist),
  the queue, the taxonomy, models (read), their OWN jobs, tokens, agreement copies and stats.
- reviewer: + reviewing submitted images, the review queue and the statistics of everyone.
- admin: + users and the tokens of others, exports, imports, model training and promotion, queue scores, all jobs.

Object-level rule: an object the caller may not see answers 404 exactly like a missing one (no existence leak) —
another user's job, token or agreement copy, and an export or user for a caller below admin. A route the caller's
role does not reach, on an object kind the caller may see (e.g. an annotator reviewing a visible image), is 403.
The full table is written out in docs/security.md; `ROUTES` below is the source of truth the tests enforce.
"""
from __future__ import annotations

from dataclasses import dataclass

from backend.db.models import ROLE_RANK

PUBLIC = "public"


@dataclass(frozen=True)
class Rule:
    role: str  # public | annotator | reviewer | admin: the least role that reaches the route (the spec's x-role)
    scope: str  # the kind of object the route names (OBJECTS), or "none" / "self" / "list:<kind>"
    note: str = ""


# Who may see objects of each kind. "pool": every logged-in user. "owner": the user it belongs to (and admins,
# unless owner_only). A role name: that role and above; everyone else gets a 404 as if it did not exist.
OBJECTS: dict[str, str] = {
    "image": "pool",
    "model": "pool",
    "job": "owner",  # Job.created_by; admins see all
    "token": "owner",  # ApiToken.user_id; admins see all
    "agreement": "owner_only",  # Assignment(kind=agreement).user_id; the route only ever reads the caller's own
    "export": "admin",
    "user": "admin",
}

# Every route of the app, by Flask endpoint name. A route missing here fails tests/security/test_policy_matrix.py.
ROUTES: dict[str, Rule] = {
    # pages and operations (no /api/v1 prefix)
    "index": Rule(PUBLIC, "none", "the single-page app shell; it logs in through the API"),
    "frontend_file": Rule(PUBLIC, "none", "static ES modules and CSS from frontend/ (no user data)"),
    "healthz": Rule(PUBLIC, "none", "liveness"),
    "readyz": Rule(PUBLIC, "none", "readiness: database/broker reachable, no data"),
    "metrics": Rule(PUBLIC, "none", "Prometheus counters; set INKLABEL_METRICS_TOKEN to require a bearer token"),
    # auth and users
    "auth.login": Rule(PUBLIC, "none", "failures back off per user name and client address"),
    "auth.logout": Rule("annotator", "self"),
    "auth.me": Rule("annotator", "self"),
    "auth.list_tokens": Rule("annotator", "list:token", "own tokens; admins may list another user's or all"),
    "auth.create_token_route": Rule("annotator", "self", "for oneself; admins may create one for another user"),
    "auth.revoke_token": Rule("annotator", "token"),
    "auth.list_users": Rule("admin", "list:user"),
    "auth.create_user_route": Rule("admin", "none"),
    "auth.update_user": Rule("admin", "user"),
    "meta.openapi": Rule(PUBLIC, "none", "the API description"),
    # images and annotations: the shared pool
    "images.upload_images": Rule("annotator", "none"),
    "images.list_images": Rule("annotator", "list:image"),
    "images.get_image": Rule("annotator", "image"),
    "images.image_file": Rule("annotator", "image", "originals only as attachments; server-chosen type, nosniff"),
    "annotations.get_annotation": Rule("annotator", "image"),
    "annotations.put_annotation": Rule("annotator", "image", "annotators: lease free or theirs (409), not submitted, "
                                       "accepted or hidden by their agreement copy (403)"),
    "annotations.submit": Rule("annotator", "image", "annotators: lease free or theirs (409)"),
    "annotations.revisions": Rule("annotator", "image"),
    "annotations.revision": Rule("annotator", "image"),
    "annotations.geometry_union": Rule("annotator", "none"),
    "annotations.geometry_difference": Rule("annotator", "none"),
    "taxonomy.get_taxonomy": Rule("annotator", "none"),
    # queue and agreement copies
    "queue.queue_next": Rule("annotator", "self"),
    "queue.queue_heartbeat": Rule("annotator", "image", "only the caller's own lease is extended (409 otherwise)"),
    "queue.queue_release": Rule("annotator", "image", "only the caller's own lease is released (409 otherwise)"),
    "queue.queue_overview": Rule("annotator", "self"),
    "queue.queue_scores": Rule("admin", "none"),
    "queue.get_agreement": Rule("annotator", "agreement"),
    "queue.put_agreement": Rule("annotator", "agreement"),
    # reviews and statistics
    "reviews.review_queue": Rule("reviewer", "list:image"),
    "reviews.review_image": Rule("reviewer", "image", "not an image one wrote any revision of (403), except admins"),
    "reviews.image_reviews": Rule("annotator", "image"),
    "review_info.record_submit_checks": Rule("annotator", "image", "the caller's reasons for overridden checks"),
    "review_info.review_info": Rule("annotator", "image"),
    "review_info.add_region_comment": Rule("annotator", "image", "reviewers pin what to fix; annotators may answer"),
    "stats.stats": Rule("reviewer", "none", "everyone's throughput and agreement"),
    "stats.my_stats": Rule("annotator", "self"),
    # jobs
    "jobs.list_jobs": Rule("annotator", "list:job", "own jobs; admins all"),
    "jobs.get_job": Rule("annotator", "job"),
    "jobs.cancel_job": Rule("annotator", "job"),
    # datasets out and in
    "exports.create_export_route": Rule("admin", "none"),
    "exports.list_exports": Rule("admin", "list:export"),
    "exports.get_export": Rule("admin", "export"),
    "exports.download_export": Rule("admin", "export"),
    "exports.delete_export": Rule("admin", "export"),
    "exports.create_import": Rule("admin", "none", "archives checked before extraction; URLs never fetched"),
    "exports.export_manifest": Rule("admin", "export", "the zip's full manifest.json"),
    "exports.export_diff": Rule("admin", "export", "images added / removed / relabelled between two exports"),
    # the dataset at a glance and bulk curation (the ML console)
    "dataset.overview": Rule("reviewer", "none", "counts, concentration histogram, queue depth"),
    "dataset.concentration_gallery": Rule("admin", "list:image", "low-concentration and flagged images"),
    "dataset.bulk": Rule("admin", "none", "flags through new annotation versions; requeue clears the lease"),
    # models
    "models.list_models": Rule("annotator", "list:model"),
    "models.get_model": Rule("annotator", "model"),
    "models.train_model": Rule("admin", "none"),
    "models.promote": Rule("admin", "model"),
    "models.model_samples": Rule("admin", "model", "validation overlays: predicted vs true masks"),
    "models.prefill": Rule("annotator", "image"),
    "models.prefill_pool": Rule("admin", "none"),
    "models.get_prediction": Rule("annotator", "image"),
    "models.assist": Rule("annotator", "image"),
}


def can_see_kind(kind: str, role: str | None) -> bool:
    """Whether a user of `role` may see objects of `kind` at all (ownership is checked by the route)."""
    rule = OBJECTS.get(kind)
    if rule is None or rule in ("pool", "owner", "owner_only"):
        return role is not None
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[rule]


def hidden_kind(endpoint: str | None, role: str | None) -> str | None:
    """The object kind when a caller of `role` who is refused this route must get a 404 (as for a missing object),
    not a 403: the route names an object of a kind the caller may not see, so even 'you may not' would confirm
    that the id exists. None when a 403 is right."""
    rule = ROUTES.get(endpoint or "")
    if rule is not None and rule.scope in OBJECTS and not can_see_kind(rule.scope, role):
        return rule.scope
    return None
