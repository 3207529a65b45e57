"""What a periodic task could not process: a log line with the ids, and a metric.

A batch task processes every row it can and reports the rest here, so that one bad row
never stops the others and still gets seen. Workers have no metrics port (their prefork
children would each need one): the count travels as a custom Celery task event,
`task-rows-failed`, which the Celery exporter adds to `celery_task_rows_failed_total`
(alert TodoBatchRowsFailed).
"""

from __future__ import annotations

import logging

ROWS_FAILED_EVENT = "task-rows-failed"

logger = logging.getLogger(__name__)


def report_failed_rows(task, what: str, ids: list[int], consequence: str) -> None:
    """Log and count `ids`, the `what` rows (todos, ...) that `task` could not process."""
    if not ids:
        return
    ids = sorted(ids)
    logger.error(
        "%s could not process %d %s (%s): ids %s",
        task.name,
        len(ids),
        what,
        consequence,
        ", ".join(map(str, ids)),
        extra={"failed_ids": ids},
    )
    try:
        task.send_event(ROWS_FAILED_EVENT, name=task.name, count=len(ids), retry=False)
    except Exception as error:  # the broker is down: the log line above still tells
        logger.warning("could not send the %s event (%s)", ROWS_FAILED_EVENT, error)
