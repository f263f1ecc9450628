"""Turns a batch of events into engine tasks: map, validate, decide, claim, publish.

Synchronous (Redis and the Celery producer are); the NATS consumer runs it in one thread and
applies the outcomes (ack, nak with delay, dead letter) afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import structlog

from agents.bridge.dedup import Claim, Markers
from agents.bridge.events import BadEvent, Event, check_size, nak_delay, raw_request, task_id_for
from agents.bridge.mapping import SubjectMap
from agents.errors import PermanentError, TransientError
from agents.execution import parse_request
from agents.routing.batch import BatchRouting
from agents.settings import Settings
from tasks.publisher import Outgoing, TaskPublisher

log = structlog.get_logger("agents.bridge")


class Action(StrEnum):
    """What the consumer does with the NATS message."""

    ACK = "ack"
    NAK = "nak"
    DEAD = "dead"  # dead-letter, then term


@dataclass(frozen=True, slots=True)
class Outcome:
    """The fate of one event; `kind` says why for naks and dead letters."""

    action: Action
    delay: float = 0.0
    kind: str = ""
    error: str = ""
    task_id: str = ""
    duplicate: bool = False  # acked without publishing: a task for it already exists


class Dispatcher:
    """One call per fetched batch; every event gets exactly one outcome."""

    def __init__(
        self, settings: Settings, subjects: SubjectMap, markers: Markers, publisher: TaskPublisher
    ) -> None:
        self.settings = settings
        self.subjects = subjects
        self.markers = markers
        self.publisher = publisher

    def retry_later(self, event: Event, kind: str, error: str = "") -> Outcome:
        """A nak whose delay grows with the delivery count."""
        s = self.settings
        delay = nak_delay(event.num_delivered, s.bridge_nak_delay_seconds, s.bridge_nak_delay_max_seconds)
        return Outcome(Action.NAK, delay=delay, kind=kind, error=error)

    def dispatch(self, events: Sequence[Event]) -> list[Outcome]:
        """Publish a task per new valid event; say what to do with each message."""
        outcomes: list[Outcome | None] = [None] * len(events)
        leaders: dict[str, tuple[int, Outgoing]] = {}
        followers: dict[str, list[int]] = {}
        routing = BatchRouting()
        for index, event in enumerate(events):
            try:
                task_id = task_id_for(event)
                if task_id in leaders:  # same event twice in one batch: same fate as the first
                    followers[task_id].append(index)
                    continue
                route = self.subjects.match(event.subject)
                if route is None:
                    raise BadEvent("unmapped_subject", f"no capability is mapped to {event.subject!r}")
                check_size(event, self.settings.max_payload_bytes)
                request = parse_request(raw_request(event, route), task_id=task_id)
                decision = routing.decide(request.capability, route.engine)
            except BadEvent as exc:
                outcomes[index] = Outcome(Action.DEAD, kind=exc.kind, error=str(exc))
            except PermanentError as exc:
                outcomes[index] = Outcome(Action.DEAD, kind=exc.kind, error=str(exc))
            except TransientError as exc:
                if event.num_delivered >= self.settings.bridge_max_deliveries:
                    outcomes[index] = Outcome(Action.DEAD, kind=exc.kind, error=str(exc))
                else:
                    outcomes[index] = self.retry_later(event, exc.kind, str(exc))
            else:
                reply = event.reply_subject or self.settings.bridge_results_subject or None
                leaders[task_id] = (index, Outgoing(request, decision, reply))
                followers[task_id] = []
        for task_id, outcome in self._publish(events, leaders).items():
            outcomes[leaders[task_id][0]] = outcome
            for index in followers[task_id]:
                same = dataclasses.replace(outcome, duplicate=outcome.action is Action.ACK)
                outcomes[index] = same
        return [o if o is not None else Outcome(Action.NAK, kind="internal") for o in outcomes]

    def _publish(
        self, events: Sequence[Event], leaders: dict[str, tuple[int, Outgoing]]
    ) -> dict[str, Outcome]:
        ids = list(leaders)
        if not ids:
            return {}
        results: dict[str, Outcome] = {}
        claims = self.markers.claim(ids)
        mine = []
        for task_id, claim in zip(ids, claims, strict=True):
            event = events[leaders[task_id][0]]
            if claim is Claim.CLAIMED:
                mine.append(task_id)
            elif claim is Claim.PUBLISHED:
                results[task_id] = Outcome(Action.ACK, task_id=task_id, duplicate=True)
            else:
                results[task_id] = self.retry_later(event, "in_flight", "another delivery is publishing it")
        try:
            refused = self.publisher.publish([leaders[t][1] for t in mine])
        except Exception as exc:  # broker down or delivery uncertain: the redelivery decides
            log.warning("bridge_publish_failed", count=len(mine), error=repr(exc))
            try:
                self.markers.release(mine)
            except Exception as release_exc:  # the pending claims expire on their own
                log.warning("bridge_release_failed", error=repr(release_exc))
            for task_id in mine:
                results[task_id] = self.retry_later(events[leaders[task_id][0]], "publish_failed", repr(exc))
            return results
        unpublishable = {item.request.task_id: error for item, error in refused}
        published = [t for t in mine if t not in unpublishable]
        try:
            self.markers.confirm(published)
            self.markers.release(list(unpublishable))
        except Exception as exc:  # published anyway: ack; the claims expire, the acks stop redelivery
            log.warning("bridge_confirm_failed", count=len(mine), error=repr(exc))
        for task_id in published:
            results[task_id] = Outcome(Action.ACK, task_id=task_id)
        for task_id, error in unpublishable.items():  # that event's own problem: it never publishes
            results[task_id] = Outcome(Action.DEAD, kind="unpublishable", error=repr(error), task_id=task_id)
        return results
