"""This product's alarms on its own metrics: the books auditor's findings and silence, ledger conflicts.

Pure definitions (`WatchedMetric`s of the library) over the services that emit them; the stack
passes each emitter's `service` dimension value (`infra/observability.py`).
"""

from __future__ import annotations

import re

from awsblocks.observability.refs import V, WatchedMetric

from dashboards.business import AUDIT_PERIOD, AUDIT_SILENT_SECONDS, FINDING_ADVICE
from lambdas.shared import books, contract
from lambdas.shared.contract import Metric


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def books_alarms(auditor_service: V, ledger_service: V) -> tuple[WatchedMetric[V], ...]:
    """Alarms on the books findings (their total), on the auditor falling silent, on ledger conflicts."""
    auditor = {contract.METRICS_SERVICE_DIMENSION: auditor_service}
    kinds = "; ".join(
        f"{metric.value}: {FINDING_ADVICE[kind]}" for kind, metric in books.METRIC_OF_KIND.items()
    )
    found: list[WatchedMetric[V]] = [
        WatchedMetric(
            _kebab(Metric.BOOKS_FINDINGS.value),
            contract.METRICS_NAMESPACE,
            Metric.BOOKS_FINDINGS.value,
            auditor,
            "The books auditor found something wrong (DESIGN section 3). The business dashboard's "
            "'Books audit: findings per run' says which kind, the books_auditor log group has one line "
            "per finding with the ids, `make audit` against the stack's tables prints every balance "
            f"sheet. Kinds: {kinds}.",
            period=AUDIT_PERIOD,
            evaluation_periods=2,  # a run near a period boundary is still seen
        )
    ]
    found.append(
        WatchedMetric(
            _kebab(Metric.AUDITS_COMPLETED.value),
            contract.METRICS_NAMESPACE,
            Metric.AUDITS_COMPLETED.value,
            auditor,
            f"No complete books audit in {AUDIT_SILENT_SECONDS // 60} minutes: the books are not being "
            "checked. Read the books_auditor's log group (errors, an incomplete run out of time) and "
            "its schedule's dead-letter queue.",
            threshold=1,
            below=True,
            statistic="Sum",
            period=AUDIT_SILENT_SECONDS,
            missing_is_breaching=True,
        )
    )
    found.append(
        WatchedMetric(
            _kebab(Metric.LEDGER_CONFLICTS.value),
            contract.METRICS_NAMESPACE,
            Metric.LEDGER_CONFLICTS.value,
            {contract.METRICS_SERVICE_DIMENSION: ledger_service},
            "A different event reused a ledger row's key; the ledger kept the first row (it is "
            "append-only). Read the ledger_recorder's log group for both events.",
            statistic="Sum",
            period=300,
        )
    )
    return tuple(found)
