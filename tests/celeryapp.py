"""The Celery application of the celery test in test_programs_pubsub.py.

The worker is started as `celery -A celeryapp worker --pool=solo` with tests/ as its
working directory and the environment variable KVRED_CELERY_URL set to the redis://
URL of the server under test: that server is both the broker (kombu's redis
transport: LPUSH/BRPOP on the queue, pub/sub for the worker's control and event
fan-out) and the result backend (SET of the result, PUBLISH/SUBSCRIBE for `.get()`).

The test process builds its own app with `make_app(url)`: the tasks have explicit
names, so the client's and the worker's apps agree on them.
"""

from __future__ import annotations

import os

from celery import Celery

URL_ENV = "KVRED_CELERY_URL"


def make_app(url: str) -> Celery:
    app = Celery("celeryapp", broker=url, backend=url)
    app.conf.update(
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=0,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        result_expires=600,
    )

    @app.task(name="celeryapp.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="celeryapp.fail", shared=False)
    def fail(message: str) -> None:
        raise ValueError(message)

    return app


app = make_app(os.environ.get(URL_ENV, "redis://127.0.0.1:6380/0"))
