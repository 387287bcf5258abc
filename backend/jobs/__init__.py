"""Background jobs: the executor (local threads or Celery) and the job kinds (exports, training, pre-fill, scores)."""
