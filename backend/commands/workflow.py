"""CLI commands of the annotation workflow: refresh the active-learning scores."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from backend.commands.core import prepare_workspace


@click.command("scores")
@click.option("--top-k", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="how many of the most uncertain images the diversity strategy orders (k-center greedy)")
@with_appcontext
def scores_command(top_k):
    """Recompute the queue's active-learning scores of the unlabelled pool.

    Reads the current segmenter's cached predictions (run `manage.py prefill` first) and writes one uncertainty
    score per new / in-progress image, plus a diversity ranking of the TOP_K most uncertain, so that
    `POST /api/v1/queue/next` is an index lookup. Run it after training or promoting a model (the API's
    POST /api/v1/queue/scores does the same as a background job). Without a current segmenter the scores are
    cleared and the queue hands out the oldest images.
    """
    from backend.db.extensions import db
    from backend.jobs.scores import refresh_scores

    prepare_workspace()
    result = refresh_scores(db.session, top_k=top_k)
    if result.get("segmenter_id") is None:
        click.echo(result["message"])
        return
    click.echo(f"scored {result['scored']} images with segmenter {result['segmenter_id']} "
               f"(classifier {result['classifier_id']}); diversity ranking of {result['diversity']} "
               f"({result['with_embedding']} with embeddings); {result['unscored_pool_images']} pool images have "
               "no prediction yet")


COMMANDS = [scores_command]
