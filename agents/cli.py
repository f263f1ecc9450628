"""The `agents` command: bring the stack up, start engine workers, look at the fleet."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import kombu.exceptions
import redis
from rich.console import Console
from rich.table import Table

from agents.cli_backup import backup, restore
from agents.cli_demo import demo, faults
from agents.cli_history import actions, alerts, doctor, insights, migrate, tasks_group
from agents.errors import AgentsError
from agents.logs import configure_logging, log_to_stderr
from agents.urls import masked

# Piped output (scripts, grep) gets full-width tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 200)


class AgentsGroup(click.Group):
    """Turns "server not reachable" into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.ConnectionError, kombu.exceptions.OperationalError) as exc:
            from agents.settings import get_settings

            url = masked(get_settings().redis_url)
            raise click.ClickException(
                f"cannot reach Redis at {url} ({exc.__class__.__name__}); is the stack running (`make run`)?"
            ) from None


@click.group(cls=AgentsGroup)
def main() -> None:
    """Agent engines on Celery."""
    configure_logging()


@main.command()
@click.option(
    "--ha", is_flag=True,
    help="The highly available topology: Redis with Sentinel, a 3-node NATS cluster, a PostgreSQL standby.",
)  # fmt: skip
def up(ha: bool) -> None:
    """Start Redis, PostgreSQL, NATS, a worker per engine, beat and Flower; Ctrl-C stops all."""
    from agents.stack.up import run_stack

    sys.exit(run_stack(ha))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("name")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(name: str, celery_args: tuple[str, ...]) -> None:
    """Start the Celery worker of engine NAME (extra arguments go to `celery worker`)."""
    from agents.worker import exec_worker

    try:
        exec_worker(name, celery_args)
    except AgentsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command(name="status")
def status() -> None:
    """Engines, capabilities, live workers, queue depth and breaker state."""
    from agents.routing.rejections import rejection_counts
    from agents.status import fleet

    table = Table(title="engines")
    for column in ("engine", "capabilities", "live workers", "queue", "breaker", "success", "latency"):
        table.add_column(column)
    for row in fleet():
        table.add_row(
            row.engine,
            ", ".join(row.capabilities),
            "\n".join(row.workers) or "[red]none[/red]",
            f"{row.depth}/{row.queue_size}",
            row.breaker.value,
            f"{row.success_rate:.0%}",
            "-" if row.latency_ms is None else f"{row.latency_ms:.0f} ms",
        )
    console.print(table)
    rejected = rejection_counts()
    if rejected:
        console.print("rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())))


main.add_command(status, name="engines")


@main.command()
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds.")
@click.option("--once", is_flag=True, help="Print one frame and exit (for scripts).")
def top(interval: float, once: bool) -> None:
    """Live view: workers, throughput, failures, p95 runtime, queues, breakers; Ctrl-C stops."""
    from agents.top import run

    run(console, interval, once)


@main.command()
@click.argument("capability")
@click.option("--payload", default="{}", help="JSON object handed to the engine.")
@click.option("--task-type", default="default", show_default=True)
@click.option("--priority", default="normal", show_default=True, help="low, normal, high, critical")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the result.")
def send(capability: str, payload: str, task_type: str, priority: str, timeout: float) -> None:
    """Route one request through the router task and print the engine's result."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    from agents.connections import redis_client
    from tasks import route

    redis_client().ping()  # fail fast with the clear "cannot reach Redis" message
    request = {"capability": capability, "task_type": task_type, "payload": body, "priority": priority}
    result = route.delay(request)
    try:
        value = result.get(timeout=timeout)
    except AgentsError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    console.print_json(json.dumps({"task_id": result.id, "result": value}))


@main.command()
@click.option("--rate", type=click.FloatRange(min=0.1), required=True, help="Requests per second offered.")
@click.option("--duration", type=click.FloatRange(min=0.1), required=True, help="Seconds of sending.")
@click.option("--capability", default="analysis", show_default=True)
@click.option(
    "--via",
    type=click.Choice(["route", "direct", "nats"]),
    default="route",
    show_default=True,
    help="route: the router task; direct: decided in-process, sent to the engine queue; nats: the bridge.",
)
@click.option("--drain-timeout", default=60.0, show_default=True, help="Seconds to wait for the history.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Draw rates and latencies to this PNG.")
def loadtest(
    rate: float,
    duration: float,
    capability: str,
    via: str,
    drain_timeout: float,
    as_json: bool,
    plot: str | None,
) -> None:
    """Open-loop load at a fixed rate; exits 1 if any request is lost."""
    from rich.progress import Progress

    from agents.loadtest import LoadPlan, run

    plan = LoadPlan(
        rate=rate,
        duration=duration,
        capability=capability,
        via=via,  # type: ignore[arg-type]
        drain_timeout=drain_timeout,
    )
    with Progress(console=console if not as_json else Console(stderr=True), transient=as_json) as progress:
        sending = progress.add_task("sent", total=plan.total)
        recording = progress.add_task("recorded", total=plan.total)
        report = run(plan, lambda n: progress.advance(sending, n), lambda n: progress.advance(recording, n))
    if as_json:
        click.echo(json.dumps(report.as_json()))
    else:
        for key, value in report.as_json().items():
            console.print(f"{key:>13}: {value}", highlight=False)
    if plot:
        from pathlib import Path

        from agents.plot import draw

        title = f"agents loadtest --rate {rate:g} --duration {duration:g} --capability {capability} "
        title += f"--via {via}\nachieved {report.achieved_rate}/s, p99 {report.p99_ms} ms"
        title += f", lost {report.lost}"
        draw(report.seconds, title, Path(plot))
        if not as_json:
            console.print(f"{'plot':>13}: {plot}", highlight=False)
    if report.lost:
        sys.exit(1)


@main.command()
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="0.0.0.0 in a pod.")
def bridge(metrics_port: int | None, metrics_host: str) -> None:
    """Consume NATS events (JetStream) and publish them as engine tasks; SIGTERM stops cleanly."""
    from agents.bridge.service import run

    run(metrics_port, metrics_host)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (pods pass 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Port to serve /metrics on  [default: EXPORTER_PORT]")
def exporter(host: str, port: int | None) -> None:
    """Serve the platform's Prometheus metrics (counters, queues, workers, breakers, database)."""
    from agents.exporter.server import serve
    from agents.settings import get_settings

    settings = get_settings()
    log_to_stderr(settings.log_level, settings.log_format)
    serve(host, port or settings.exporter_port)


@main.command(name="history-writer")
def history_writer() -> None:
    """Move lifecycle records from Redis to PostgreSQL in batches until SIGTERM."""
    from agents.recorder import run_writer_process
    from agents.settings import get_settings

    settings = get_settings()
    log_to_stderr(settings.log_level, settings.log_format)
    run_writer_process()


@main.command()
@click.argument("route", required=False, type=click.Choice(["old_system", "new_system", "default"]))
def traffic(route: str | None) -> None:
    """Show or switch TRAFFIC_ROUTE live: old_system stops the bridge consuming (rollback)."""
    from agents.bridge.traffic import current_route, set_route
    from agents.connections import redis_client
    from agents.settings import get_settings

    if route is not None:
        set_route(redis_client(), None if route == "default" else route)  # type: ignore[arg-type]
    console.print(f"traffic route: {current_route(redis_client(), get_settings().traffic_route)}")


main.add_command(migrate)
main.add_command(doctor)
main.add_command(tasks_group)
main.add_command(alerts)
main.add_command(demo)
main.add_command(faults)
main.add_command(actions)
main.add_command(insights)
main.add_command(backup)
main.add_command(restore)

if __name__ == "__main__":
    main()
